"""Command-line entry points: ``flask agent …``, ``flask api-token …``, ``flask seed``. One commit per command."""
from __future__ import annotations

import getpass
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.audit.context import set_actor
from app.db import session
from app.errors import BusinessError

agent_cli = AppGroup("agent", help="Gérer les agents (comptes utilisateurs).")


def _cli_actor() -> None:
    set_actor(actor_id=None, actor_label=f"cli:{getpass.getuser()}")


@contextmanager
def _refused_as_click_error():
    """A BusinessError rolls the command's writes back and ends it with its message (exit 1)."""
    try:
        yield
    except BusinessError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from exc


def _split(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@agent_cli.command("create")
@click.option("--login", required=True, help="Identifiant de connexion.")
@click.option("--full-name", default=None, help="Nom complet (par défaut : l'identifiant).")
@click.option("--email", default=None)
@click.option("--language", default="fr", type=click.Choice(["fr", "en"]))
@click.option("--roles", default="", help="Codes de rôles séparés par des virgules.")
@click.option("--territories", default="", help="Codes de territoires séparés par des virgules.")
def create_agent_command(login, full_name, email, language, roles, territories):
    """Create an agent; the password is read from standard input."""
    from app.security import service

    if sys.stdin.isatty():
        password = click.prompt("Mot de passe", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    _cli_actor()
    with _refused_as_click_error():
        agent = service.create_agent(
            login=login,
            full_name=full_name or login,
            password=password,
            email=email,
            language=language,
            role_codes=_split(roles),
            territory_codes=_split(territories),
        )
    session.commit()
    click.echo(f"Agent « {agent.login} » créé (rôles : {', '.join(map(str, agent.roles)) or 'aucun'} ; "
               f"territoires : {', '.join(t.code for t in agent.territories) or 'aucun'}).")


@agent_cli.command("list")
def list_agents_command():
    """List agents with their roles and territories."""
    from app.security import service

    for agent in service.list_agents():
        state = "actif" if agent.active else "désactivé"
        click.echo(f"{agent.login:24} {state:10} {','.join(map(str, agent.roles)):40} "
                   f"{','.join(t.code for t in agent.territories)}")


role_cli = AppGroup("role", help="Gérer les rôles (habilitations fonctionnelles).")
territory_cli = AppGroup("territory", help="Gérer l'arbre des territoires (habilitations géographiques).")


@role_cli.command("init")
def init_roles_command():
    """Create the standard roles (admin, accueil, back_office, superviseur, concepteur)."""
    from app.security.roles import ensure_standard_roles

    _cli_actor()
    roles = ensure_standard_roles()
    session.commit()
    for role in roles:
        click.echo(f"{role.code:14} {role.label:28} {', '.join(sorted(role.permission_codes))}")


@territory_cli.command("add")
@click.option("--code", required=True, help="Code unique (le code INSEE pour une commune).")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(["region", "agency", "commune"]))
@click.option("--parent", "parent_code", default=None, help="Code du territoire parent.")
def add_territory_command(code, name, kind, parent_code):
    """Add a territory under its parent (a region has none)."""
    from app.security import service

    _cli_actor()
    with _refused_as_click_error():
        parent = service.get_territory_by_code(code=parent_code) if parent_code else None
        if parent_code and parent is None:
            raise BusinessError(f"Territoire parent inconnu : {parent_code}")
        territory = service.create_territory(code=code, name=name, kind=kind, parent=parent,
                                             insee_code=code if kind == "commune" else None)
    session.commit()
    click.echo(f"Territoire {territory.code} ({territory.name}) créé : {territory.path}")


@territory_cli.command("list")
def list_territories_command():
    """Print the territory tree."""
    from app.security import service

    for territory in service.list_territories():
        click.echo(f"{'  ' * territory.depth}{territory.code:12} {territory.kind:8} {territory.name}")


api_token_cli = AppGroup("api-token", help="Gérer les jetons d'accès des systèmes (API).")


@api_token_cli.command("create")
@click.option("--system", required=True, help="Nom du système appelant (ex. « Téléphonie Lyon »).")
@click.option("--permissions", required=True, help="Codes de permissions d'API séparés par des virgules (identify).")
@click.option("--territories", required=True,
              help="Codes des territoires du jeton, séparés par des virgules : il ne répond que pour eux.")
def create_api_token_command(system, permissions, territories):
    """Create a token; it is printed once, on the last line, and never again."""
    from app.api import tokens

    _cli_actor()
    with _refused_as_click_error():
        token, plaintext = tokens.create_token(system=system, permissions=_split(permissions),
                                               territory_codes=_split(territories), created_by=None)
    session.commit()
    click.echo(f"Jeton n° {token.id} créé pour « {token.system} » (permissions : {', '.join(token.permission_codes)} ; "
               f"territoires : {', '.join(t.code for t in token.territories)}).")
    click.echo("Copiez-le maintenant, il ne sera plus affiché :", err=True)
    click.echo(plaintext)


@api_token_cli.command("list")
def list_api_tokens_command():
    """List tokens (never their value: only its first characters)."""
    from app.api import tokens

    for token in tokens.list_tokens():
        state = "actif" if token.is_active else f"révoqué {token.revoked_at:%Y-%m-%d %H:%M}"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "jamais utilisé"
        click.echo(f"{token.id:>4} {token.prefix}… {state:26} {used:16} {','.join(token.permission_codes):12} "
                   f"{','.join(t.code for t in token.territories) or '(aucun territoire)':24} {token.system}")


@api_token_cli.command("territories")
@click.argument("token_id", type=int)
@click.option("--territories", required=True, help="Codes des nouveaux territoires, séparés par des virgules.")
def set_api_token_territories_command(token_id, territories):
    """Replace the territories of token TOKEN_ID (at least one)."""
    from app.api import tokens

    _cli_actor()
    with _refused_as_click_error():
        token = tokens.set_territories(token_id=token_id, territory_codes=_split(territories))
    session.commit()
    click.echo(f"Jeton n° {token.id} ({token}) : territoires {', '.join(t.code for t in token.territories)}.")


@api_token_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_api_token_command(token_id):
    """Revoke token TOKEN_ID: every later call with it is refused."""
    from app.api import tokens

    _cli_actor()
    with _refused_as_click_error():
        token = tokens.revoke(token_id=token_id)
    session.commit()
    click.echo(f"Jeton n° {token.id} ({token}) révoqué.")


@click.command("import")
@with_appcontext
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_command(directory: Path):
    """Import the billing system's CSV exports found in DIRECTORY (all or nothing)."""
    from app.integration import billing_files, billing_import

    _cli_actor()
    total = billing_files.count_lines(directory)
    with click.progressbar(length=total * 2, label="Import", show_pos=True, file=sys.stderr) as bar:
        report = billing_import.import_directory(directory, progress=bar.update)
    if not report.ok:
        session.rollback()
        for problem in report.problems[:200]:
            click.echo(f"  ✗ {problem}", err=True)
        if len(report.problems) > 200:
            click.echo(f"  … et {len(report.problems) - 200} autres problèmes", err=True)
        click.echo(f"Import annulé : {len(report.problems)} problème(s), rien n'a été écrit.", err=True)
    else:
        session.commit()
    click.echo(f"{'objet':16} {'créés':>9} {'modifiés':>9} {'inchangés':>9} {'rejetés':>9}")
    for kind, counts in report.counts.items():
        click.echo(f"{kind:16} {counts['created']:>9} {counts['updated']:>9} {counts['unchanged']:>9} "
                   f"{counts['rejected']:>9}")
    if not report.ok:
        sys.exit(1)


@click.command("seed")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Ne rien faire si des agents existent déjà.")
@click.option("--customers", type=click.IntRange(min=0), default=0,
              help="Ajouter N clients fictifs (contrats, factures, paiements, relevés) dans les communes.")
@click.option("--random-seed", type=int, default=1, show_default=True,
              help="Graine du générateur : mêmes clients pour une même graine sur une même base.")
@click.option("--activity/--no-activity", default=True, show_default=True,
              help="Avec --customers : rejouer les 120 derniers jours d'activité des agents de démonstration "
                   "(contacts, dossiers, relances), si la base n'a encore aucun contact.")
def seed_command(if_empty, customers, random_seed, activity):
    """Create the demo territories, roles and agents (and synthetic customers), print the logins."""
    from flask import current_app

    from app.seed import demo

    if current_app.config["GUICHET_ENV"] == "production":
        raise click.ClickException("flask seed crée des comptes de démonstration : refusé en production.")
    _cli_actor()
    already = if_empty and demo.has_agents()
    if already:
        click.echo("Base déjà initialisée : données de démonstration inchangées"
                   + (", aucun client fictif ajouté." if customers else "."))
        # A demo base made before contacts existed gets the demo contact types and classifications.
        from app.seed.referentials import seed_referentials

        added = seed_referentials()
        session.commit()
        if any(added.values()):
            click.echo(f"Référentiels de démonstration ajoutés : {added['contact_types']} types de contact, "
                       f"{added['dossier_types']} classifications, {added['dunning_procedures']} procédure de relance.")
    else:
        created = demo.seed_demo()
        session.commit()
        click.echo(f"Territoires : {created['territories']} créés ; rôles : {created['roles']} ; "
                   f"agents : {created['agents']} créés.")
        if customers:
            _seed_customers(customers, random_seed)
    if customers and activity:
        _seed_activity(customers, random_seed)
    _seed_postal_codes()
    demo_agents = demo.existing_demo_agents()
    if demo_agents:
        click.echo(f"Comptes de démonstration (mot de passe commun : {demo.DEMO_PASSWORD}) :")
        for login, description in demo_agents:
            click.echo(f"  {login:18} {description}")


def _seed_customers(count: int, random_seed: int) -> None:
    """Synthetic customers in one transaction, audited by one summary entry (not one per row)."""
    from app.audit import service as audit
    from app.seed.customers import generate_customers

    with _refused_as_click_error(), click.progressbar(length=count, label="Clients fictifs", show_pos=True,
                                                      file=sys.stderr) as bar:
        counts = generate_customers(count=count, seed=random_seed, progress=bar.update)
    audit.record("seed_customers", object_type="synthetic_data", object_id=str(count),
                 data={"customers": count, "random_seed": random_seed, "rows": counts})
    session.commit()
    click.echo("Clients fictifs : " + " ; ".join(f"{table} {n}" for table, n in counts.items()))


def _seed_activity(customers: int, random_seed: int) -> None:
    """The demo agents' last months (app.seed.activity), in proportion to the customers seeded
    (3,000 customers: 1,500 contacts, 300 dossiers); nothing when the base has contacts already."""
    from app.audit import service as audit
    from app.seed.activity import CONTACTS, DOSSIERS, seed_activity

    started = time.perf_counter()
    with _refused_as_click_error():
        counts = seed_activity(contacts_count=min(CONTACTS, customers // 2),
                               dossiers_count=min(DOSSIERS, customers // 10), seed=random_seed)
    if not counts["contacts"]:
        session.rollback()
        click.echo("Activité de démonstration : la base a déjà des contacts (ou aucun client), rien d'ajouté.")
        return
    audit.record("seed_activity", object_type="synthetic_data", object_id=str(counts["contacts"]),
                 data={"random_seed": random_seed, **counts})
    session.commit()
    click.echo(f"Activité de démonstration ({time.perf_counter() - started:.0f} s) : {counts['contacts']} contacts, "
               f"{counts['dossiers']} dossiers, {counts['relaunches']} relances, {counts['closed']} dossiers clos.")


postal_code_cli = AppGroup("postal-codes", help="Référentiel des codes postaux (base de La Poste).")


# The whole of France is some 35,000 (postal code, commune) rows: far fewer means an empty or
# truncated file, which would wipe the reference and block every address change.
POSTAL_CODE_MIN_ROWS = 30_000


@postal_code_cli.command("load")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fichier codes-postaux.json (par défaut : celui du paquet npm codes-postaux).")
@click.option("--allow-partial", is_flag=True, default=False,
              help="Accepter un fichier de moins de 30 000 lignes (un extrait, pour des essais).")
def load_postal_codes_command(path, allow_partial):
    """Replace the postal code reference with the file's content, in one transaction."""
    from app.parties import addresses

    _cli_actor()
    path = path or addresses.DEFAULT_POSTAL_CODE_FILE
    rows = _read_postal_codes(path)
    if not rows:
        raise click.ClickException(f"Fichier des codes postaux vide ({path}) : référentiel inchangé.")
    if len(rows) < POSTAL_CODE_MIN_ROWS and not allow_partial:
        minimum = f"{POSTAL_CODE_MIN_ROWS:_}".replace("_", " ")
        raise click.ClickException(
            f"Le fichier {path} ne contient que {_count(len(rows), 'ligne', 'lignes')} (au moins {minimum} "
            "attendues pour la France entière) : fichier tronqué ? Référentiel inchangé. "
            "Pour charger un extrait quand même : --allow-partial.")
    previous = addresses.replace_postal_codes(rows)
    session.commit()
    _echo_postal_codes(rows, previous)


def _read_postal_codes(path: Path) -> list[dict[str, str]]:
    from app.parties import addresses

    try:
        return addresses.read_postal_code_file(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise click.ClickException(f"Fichier des codes postaux illisible ({path}) : {exc}") from exc


def _count(n: int, singular: str, plural: str) -> str:
    """"1 ligne", "0 ligne", "2 lignes": in French, 0 and 1 take the singular."""
    return f"{n} {singular if n < 2 else plural}"


def _echo_postal_codes(rows: list[dict[str, str]], previous: int | None) -> None:
    communes = len({row["insee_code"] for row in rows})
    codes = len({row["postal_code"] for row in rows})
    click.echo(f"Codes postaux : {_count(len(rows), 'ligne', 'lignes')} "
               f"({_count(codes, 'code postal', 'codes postaux')}, {_count(communes, 'commune', 'communes')})"
               + (f" ; {_count(previous, 'remplacée', 'remplacées')}." if previous is not None else "."))


def _seed_postal_codes() -> None:
    """The demo gets the postal code reference when it has none and the npm package is there."""
    from app.parties import addresses

    if addresses.is_loaded() or not addresses.DEFAULT_POSTAL_CODE_FILE.exists():
        return
    rows = _read_postal_codes(addresses.DEFAULT_POSTAL_CODE_FILE)
    addresses.replace_postal_codes(rows)
    session.commit()
    _echo_postal_codes(rows, None)


search_cli = AppGroup("search", help="Index de recherche des interlocuteurs.")


@search_cli.command("reindex")
def reindex_command():
    """Rebuild the search index of every party (after a restore, or a change of normalisation)."""
    from app.search import index

    _cli_actor()
    started = time.perf_counter()
    count = index.rebuild()
    session.commit()
    click.echo(f"Index de recherche reconstruit : {count} interlocuteurs en {time.perf_counter() - started:.1f} s.")


process_cli = AppGroup("processes", help="Déployer les processus BPMN (dossier bpmn/).")


@process_cli.command("deploy")
@click.argument("keys", nargs=-1)
@click.option("--path", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Dossier des processus (par défaut : bpmn/ du projet).")
def deploy_processes_command(keys, root):
    """Check each process folder and store it as a new version when it changed (all or nothing)."""
    from app.config import PROJECT_ROOT
    from app.processes.definitions import deploy_directory
    from app.processes.engine import ProcessError

    _cli_actor()
    try:
        results = deploy_directory(root or PROJECT_ROOT / "bpmn", list(keys) or None)
    except ProcessError as exc:
        session.rollback()
        raise click.ClickException(f"rien n'a été déployé : {exc}") from exc
    session.commit()
    for result in results:
        definition = result.definition
        state = "nouvelle version" if result.created else "inchangé"
        click.echo(f"{definition.key:24} v{definition.version}  {state}  ({definition.content_hash[:12]})")


documents_cli = AppGroup("documents", help="Modèles de courriers et de mails (dossier templates_docs/).")


@documents_cli.command("deploy")
@click.option("--path", "root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Dossier des modèles (par défaut : templates_docs/ du projet).")
def deploy_documents_command(root):
    """Check each template of catalogue.toml and store it as a new version when it changed (all or nothing)."""
    from app.config import PROJECT_ROOT
    from app.documents.rendering import DocumentError
    from app.documents.templates import deploy_directory

    _cli_actor()
    try:
        results = deploy_directory(root or PROJECT_ROOT / "templates_docs")
    except (DocumentError, OSError, KeyError, ValueError) as exc:
        session.rollback()
        raise click.ClickException(f"rien n'a été déployé : {exc}") from exc
    session.commit()
    for result in results:
        template = result.template
        state = "inchangé" if not result.created else (
            "nouvelle version retenue (désactivée) : une version déposée par un administrateur reste en service"
            if result.held else "nouvelle version")
        click.echo(f"{template.kind:6} {template.code:30} v{template.version}  {state}")


def init_app(app: Flask) -> None:
    app.cli.add_command(documents_cli)
    app.cli.add_command(process_cli)
    app.cli.add_command(agent_cli)
    app.cli.add_command(role_cli)
    app.cli.add_command(territory_cli)
    app.cli.add_command(api_token_cli)
    app.cli.add_command(search_cli)
    app.cli.add_command(postal_code_cli)
    app.cli.add_command(seed_command)
    app.cli.add_command(import_command)

    from app.dunning.cli import dunning_cli

    app.cli.add_command(dunning_cli)
