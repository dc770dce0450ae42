"""Imports every model module so that the metadata knows all tables (migrations, tests)."""
from app.audit.models import AuditEntry  # noqa: F401
from app.security.models import Agent, AgentSession, Role, RolePermission, Territory  # noqa: F401
