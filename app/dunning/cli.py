"""``flask dunning run [--date D] [--dry-run] [--workers]``: the dunning run by hand."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from app.db import session
from app.errors import BusinessError
from app.labels import label

dunning_cli = AppGroup("dunning", help="Relances d'impayés.")


@dunning_cli.command("run")
@click.option("--date", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Le jour de la relance (AAAA-MM-JJ ; par défaut : aujourd'hui).")
@click.option("--dry-run", is_flag=True, help="Lister ce qui serait fait, sans rien écrire.")
@click.option("--workers", is_flag=True, help="Répartir le travail entre les workers Celery au lieu de le faire ici.")
@click.option("--limit", type=int, default=None, help="Avec --dry-run : nombre de lignes listées au plus.")
def run_command(as_of, dry_run, workers, limit):
    """Open a relaunch dossier for each contract to chase on that day and start its process."""
    import getpass

    from app.audit.context import set_actor
    from app.dunning import service
    from app.parties.overview import local_today

    day: date = as_of.date() if as_of else local_today()
    set_actor(actor_id=None, actor_label=f"cli:{getpass.getuser()}")
    try:
        if dry_run:
            procedure = service.active_procedure()
            if procedure is None:
                raise BusinessError("Aucune procédure de relance active : rien à lancer.")
            planned = service.dry_run(procedure, day, limit=limit)
            for line in planned:
                what = "ouvrir" if line.reason is None else f"écarté ({label(line.reason, 'dunning_reason')})"
                click.echo(f"{line.contract_number}\t{line.amount}\t{line.invoices} facture(s)\t"
                           f"depuis le {line.since.isoformat()}\t{what}")
            selection = service.select_contracts(procedure, day)  # the totals, whatever --limit shows
            skipped = ", ".join(f"{label(k, 'dunning_reason')} {v}" for k, v in selection.skipped.items() if v)
            click.echo(f"Essai à blanc au {day.isoformat()} : {len(selection.to_open)} dossier(s) à ouvrir, "
                       f"{sum(selection.skipped.values())} contrat(s) écarté(s)"
                       f"{f' ({skipped})' if skipped else ''}. Rien n'a été écrit.")
            session.rollback()
            return
        if workers:
            queued = service.dispatch(as_of=day, trigger="cli")
            click.echo(f"Relance n° {queued['run']} au {day.isoformat()} : {queued['selected']} contrat(s) "
                       f"en {queued['chunks']} lot(s) confiés aux workers.")
            return
        run = service.run_inline(as_of=day, trigger="cli")
        counts = service.counts_of(run)
        skipped = ", ".join(f"{label(k, 'dunning_reason')} {v}" for k, v in run.skipped.items() if v) or "aucun"
        click.echo(f"Relance n° {run.id} au {day.isoformat()} : {counts.opened} dossier(s) ouvert(s), "
                   f"{counts.already_open} déjà ouvert(s), {counts.no_longer_due} plus dû(s), "
                   f"{counts.failed} en échec ; écartés à la sélection : {skipped}.")
        if counts.failed:
            raise SystemExit(1)
    except BusinessError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from exc
