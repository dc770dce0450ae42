"""``flask privacy retention [--dry-run] [--limit N]``: the GDPR retention run by hand (the nightly
job does the same, workers.tasks.privacy_retention)."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import clock
from app.db import session

privacy_cli = AppGroup("privacy", help="Données personnelles (RGPD) : conservation et effacement.")


@privacy_cli.command("retention")
@click.option("--dry-run", is_flag=True, help="Lister les interlocuteurs à anonymiser, sans rien écrire.")
@click.option("--limit", type=int, default=None, help="Nombre d'interlocuteurs traités (ou listés) au plus.")
def retention_command(dry_run: bool, limit: int | None):
    """Anonymise the prospects and former customers past their retention period."""
    import getpass

    from app.audit.context import set_actor
    from app.parties.models import Party
    from app.privacy import retention

    set_actor(actor_id=None, actor_label=f"cli:{getpass.getuser()}")
    now = clock.now()
    prospect_days, former_days = retention.retention_days()
    if dry_run:
        ids = retention.candidates(now, limit)
        for start in range(0, len(ids), 1000):
            rows = session.execute(select(Party.id, Party.number, Party.status)
                                   .where(Party.id.in_(ids[start:start + 1000])).order_by(Party.id)).all()
            for row in rows:
                click.echo(f"{row.number}\t{row.status}")
        session.rollback()
        click.echo(f"Essai à blanc : {len(ids)} interlocuteur(s) à anonymiser (prospects sans activité depuis "
                   f"{prospect_days} jours, anciens clients depuis {former_days} jours). Rien n'a été écrit.")
        return
    counts = retention.run(now, limit=limit)
    click.echo(f"Conservation : {counts['anonymised']} interlocuteur(s) anonymisé(s), "
               f"{counts['refused']} laissé(s) en l'état (activité ou dossier survenu entre-temps).")
