"""A test run of a draft: the analyst starts it with sample data and steps through its forms, fires
its timers and sends its messages, in a sandbox. Scripts, conditions and forms run as they will in
production; operations (letters, mails, the billing system…) are only written in a journal, and
nothing is stored: the run's state travels with the page, signed so that it cannot be forged, and
tied to the draft's content (a draft changed since gives a clear message, not a broken run)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from app import clock
from app.errors import BusinessError
from app.processes import definitions, engine, forms, service
from app.processes.engine import Run, StepError, TaskNotReady

MAX_TOKEN = 2_000_000  # characters: a run past this is not a test any more


# What each operation answers in a test run unless the sample data says otherwise ("trial_results"):
# enough for the shipped processes' gateways to take their usual path.
TRIAL_RESULTS = {
    "dunning_level": {"outcome": "done", "task": False, "last": False, "wait": "P15D"},
    "generate_document": {"template": None}, "send_mail": {"queued": True}, "create_affaire": {"queued": True},
    "update_party_field": {"updated": True}, "close_dossier": {"closed": True}, "record_payment_plan": {},
}


@dataclass
class Trial:
    key: str
    files: dict[str, str]
    run: Run
    journal: list = field(default_factory=list)
    error: str | None = None
    results: dict = field(default_factory=dict)

    @property
    def snapshot(self) -> engine.Snapshot:
        return self.run.snapshot()

    def token(self) -> str:
        payload = {"hash": definitions.content_hash(self.files), "state": self.run.dump(), "journal": self.journal,
                   "results": self.results}
        return _signer().dumps(payload)

    def form_of(self, task: engine.UserTask) -> tuple[dict, dict]:
        schema = json.loads(self.files.get(task.form or "", "{}") or "{}")
        ui = json.loads(self.files.get(task.ui_form or "", "{}") or "{}")
        return schema, ui


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="process-trial")


def _version(key: str, files: dict[str, str]):
    """The draft as the engine sees a deployed version (its parsed spec is cached by content)."""
    engine.check(key, files)  # a draft that does not deploy does not run either: ProcessError
    # transient: parsed for this request, kept out of the engine's cache of deployed versions.
    return SimpleNamespace(key=key, files=files, content_hash="trial-" + definitions.content_hash(files),
                           transient=True)


def sample_data(agent, key: str, files: dict[str, str]) -> dict:
    """Start data shaped like a real start's (processes.service._context), with made-up values, and
    under "trial_results" what each operation the draft names answers in the test run."""
    operations = sorted(set(re.findall(r'serviceTaskOperator id="([a-z_]+)"', files.get(f"{key}.bpmn", ""))))
    return {"context": {"dossier_id": None, "dossier_reference": "DOS-ESSAI", "contact_id": None, "party_id": None,
                        "party_number": "C-ESSAI", "party_name": "Client d'essai", "contract_id": None,
                        "contract_number": "CTR-ESSAI", "agent_id": agent.id, "agent_name": agent.full_name},
            "trial_results": {name: TRIAL_RESULTS.get(name, {}) for name in operations}}


def start(key: str, files: dict[str, str], data: dict) -> Trial:
    journal: list = []
    results = data.pop("trial_results", None)
    results = results if isinstance(results, dict) else {}
    run = Run.start(_version(key, files), data, script_engine=engine.trial_engine(journal, results))
    trial = Trial(key, files, run, journal, results=results)
    _do(trial, lambda r: r.advance())
    return trial


def load(key: str, files: dict[str, str], token: str) -> Trial:
    if len(token) > MAX_TOKEN:
        raise BusinessError(_("Cet essai est trop long : recommencez-le."))
    try:
        payload = _signer().loads(token)
    except BadSignature:
        raise BusinessError(_("Essai illisible : recommencez-le.")) from None
    if payload.get("hash") != definitions.content_hash(files):
        raise BusinessError(_("Le brouillon a changé depuis le début de cet essai : recommencez-le."))
    journal = list(payload.get("journal") or [])
    results = payload.get("results") or {}
    run = Run.load(_version(key, files), payload["state"], script_engine=engine.trial_engine(journal, results))
    return Trial(key, files, run, journal, results=results)


def _do(trial: Trial, action) -> None:
    try:
        action(trial.run)
    except StepError as exc:
        trial.error = f"{exc.element} : {exc.message}"


def complete(trial: Trial, uuid: str, posted) -> dict[str, str]:
    """Complete a ready task with the posted form, checked as the agent's page checks it; the
    errors by field when refused (nothing moves)."""
    task = next((t for t in trial.snapshot.ready if t.uuid == uuid), None)
    if task is None:
        raise BusinessError(_("Cette étape n'attend plus de réponse."))
    schema, ui = trial.form_of(task)
    answers = forms.parse(schema, ui, posted)
    # The guard sees the data without its context: a test run reads no real record.
    errors = service.refusals(schema, ui, answers, lambda: {k: v for k, v in task.data.items() if k != "context"})
    if errors:
        return errors
    try:
        _do(trial, lambda r: r.complete(uuid, answers))
    except TaskNotReady:
        raise BusinessError(_("Cette étape n'attend plus de réponse.")) from None
    return {}


def fire(trial: Trial, uuid: str) -> None:
    fired = []
    _do(trial, lambda r: fired.append(r.fire_timer(uuid, clock.now())))
    if fired == [False]:
        raise BusinessError(_("Ce minuteur n'attend plus."))


def send(trial: Trial, name: str) -> None:
    if name not in trial.snapshot.messages:
        raise BusinessError(_("Le processus n'attend pas ce message."))
    _do(trial, lambda r: r.deliver(name, {}))
