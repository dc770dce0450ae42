"""Imports every model module so that the metadata knows all tables (migrations, tests)."""
from app.api.models import ApiIdempotencyKey, ApiToken  # noqa: F401
from app.audit.models import AuditEntry  # noqa: F401
from app.contacts.models import (  # noqa: F401
    Contact,
    ContactAgent,
    ContactObject,
    ContactParty,
    ContactType,
    TemplateItem,
)
from app.contracts.models import (  # noqa: F401
    Contract,
    ContractParty,
    Invoice,
    Meter,
    MeterInstallation,
    MeterReading,
    Payment,
    ServicePoint,
)
from app.documents.models import DocumentTemplate, StoredFile  # noqa: F401
from app.dossiers.models import (  # noqa: F401
    Dossier,
    DossierAgent,
    DossierContact,
    DossierElement,
    DossierObject,
    DossierParty,
    DossierType,
    ReferenceCounter,
)
from app.dunning.models import (  # noqa: F401
    DunningBlock,
    DunningLevel,
    DunningProcedure,
    DunningRun,
    DunningRunChunk,
    DunningRunItem,
    PaymentPlan,
)
from app.integration.models import AffaireSync  # noqa: F401
from app.mails.models import OutgoingMail  # noqa: F401
from app.parties.addresses import PostalCode  # noqa: F401
from app.parties.models import Party, PartyEmail, PartyPhone  # noqa: F401
from app.processes.models import (  # noqa: F401
    ProcessDefinition,
    ProcessDraft,
    ProcessInstance,
    ProcessMessage,
    ProcessTask,
    ProcessTimer,
)
from app.search.models import PartySearch  # noqa: F401
from app.security.models import Agent, AgentSession, Role, RolePermission, Territory  # noqa: F401
