"""French postal addresses: the postal code reference and the resolution of a typed address.

The reference is La Poste's postal code base as packaged by the npm package ``codes-postaux``
(one row per postal code and commune). An address is accepted only when its postal code exists
and its city is one of that postal code's communes; the stored city is then the official commune
name and the INSEE code gives the party's territory, so that a typo never moves a customer out
of (or into) an agent's scope.

Paris, Lyon and Marseille are split into municipal arrondissements in the base (75101, 69383…),
while territories, the billing system and the demo data use the commune (75056, 69123, 13055):
the loader maps each arrondissement onto its commune.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, session
from app.errors import BusinessError
from app.search.normalise import normalise
from app.security.models import Territory

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTAL_CODE_FILE = ROOT / "node_modules" / "codes-postaux" / "codes-postaux.json"
STREET_MAX = 200
CITY_MAX = 100
_POSTAL_CODE = re.compile(r"^\d{5}$")
# (first and last INSEE code of the arrondissements, INSEE code and name of the commune)
ARRONDISSEMENTS = (("75101", "75120", "75056", "Paris"), ("69381", "69389", "69123", "Lyon"),
                   ("13201", "13216", "13055", "Marseille"))
# "Lyon 3e", "Paris 16ème", "Marseille 1er arrondissement", "PARIS 03", once normalised.
_ARRONDISSEMENT_CITY = re.compile(r"^(paris|lyon|marseille) \d{1,2}(?: ?(?:er|e|eme))?(?: arrondissement)?$")
_LISTED_COMMUNES = 12
# "Thièvres (62)", "Thièvres (80756)": a commune told apart by its department or its INSEE code,
# for the communes that share a name under one postal code (62760 serves two Thièvres).
_QUALIFIED_CITY = re.compile(r"^(?P<name>.*?)\s*\((?P<code>\d[\dAB]\d{0,3})\)$", re.IGNORECASE)


class PostalCode(Base):
    """One commune served by one postal code (a postal code may serve several communes and a
    commune may have several postal codes)."""

    __tablename__ = "postal_code"

    postal_code: Mapped[str] = mapped_column(String(5), primary_key=True)
    insee_code: Mapped[str] = mapped_column(String(5), primary_key=True, index=True)
    commune: Mapped[str] = mapped_column(String(100))
    routing_label: Mapped[str] = mapped_column(String(100))  # libellé d'acheminement: "ST ETIENNE"


@dataclass(frozen=True)
class ResolvedAddress:
    street: str | None
    address_extra: str | None
    postal_code: str
    city: str
    insee_code: str
    territory_id: int | None


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _commune_key(city: str) -> str:
    """The normalised city, an arrondissement of Paris, Lyon or Marseille read as the commune."""
    key = normalise(city)
    match = _ARRONDISSEMENT_CITY.match(key)
    return match.group(1) if match else key


def _listing(names: Iterable[str]) -> str:
    names = sorted(set(names))
    shown = ", ".join(names[:_LISTED_COMMUNES])
    return shown + (f", … ({len(names)})" if len(names) > _LISTED_COMMUNES else "")


def department_of(insee_code: str) -> str:
    """The department of an INSEE commune code: "62", "2A", "971"."""
    return insee_code[:3] if insee_code.startswith("97") else insee_code[:2]


def communes_of(postal_code: str) -> list[PostalCode]:
    """The communes served by a postal code, by name."""
    stmt = (select(PostalCode).where(PostalCode.postal_code == postal_code)
            .order_by(PostalCode.commune, PostalCode.insee_code))
    return list(session.execute(stmt).scalars())


def _choice_labels(communes: list[PostalCode]) -> list[str]:
    """Each commune's name as the agent may type it: the name alone, or followed by the
    department ("Thièvres (62)") when communes of that name share the postal code, or by the
    INSEE code when they share the department too."""
    labels = []
    for commune in communes:
        namesakes = [c for c in communes if normalise(c.commune) == normalise(commune.commune)]
        if len(namesakes) == 1:
            labels.append(commune.commune)
            continue
        department = department_of(commune.insee_code)
        shared = sum(department_of(c.insee_code) == department for c in namesakes) > 1
        labels.append(f"{commune.commune} ({commune.insee_code if shared else department})")
    return labels


def commune_choices(postal_code: str) -> list[str]:
    """The communes of a postal code as the city field suggests them (see _choice_labels)."""
    return _choice_labels(communes_of(postal_code))


def commune_territory_id(insee_code: str) -> int | None:
    """The commune territory of this INSEE code, None when the commune is outside every territory."""
    stmt = select(Territory.id).where(Territory.kind == "commune", Territory.insee_code == insee_code).limit(1)
    return session.execute(stmt).scalar_one_or_none()


def _described(communes: list[PostalCode]) -> str:
    """The communes of one name, each with its department and INSEE code."""
    return ", ".join(str(_l("%(commune)s (%(department)s, code INSEE %(insee)s)", commune=c.commune,
                            department=department_of(c.insee_code), insee=c.insee_code)) for c in communes)


def _among_namesakes(postal_code: str, namesakes: list[PostalCode], qualifier: str | None,
                     insee_code: str | None) -> PostalCode:
    """One of the communes of one name under one postal code, told apart by the department or
    INSEE code typed after the name, or else by the commune already stored."""
    if qualifier:
        chosen = [c for c in namesakes if c.insee_code == qualifier or department_of(c.insee_code) == qualifier]
    else:
        chosen = [c for c in namesakes if insee_code and c.insee_code == insee_code]
    if len(chosen) == 1:
        return chosen[0]
    first = namesakes[0]
    raise BusinessError(_l("Plusieurs communes portent le nom « %(city)s » sous le code postal %(code)s : "
                           "%(communes)s. Précisez le département, par exemple « %(example)s ».",
                           city=first.commune, code=postal_code, communes=_described(namesakes),
                           example=f"{first.commune} ({department_of(first.insee_code)})"), field="city")


def _choose_commune(postal_code: str, city: str, communes: list[PostalCode],
                    insee_code: str | None = None) -> PostalCode:
    if not city:
        if len(communes) == 1:
            return communes[0]
        raise BusinessError(_l("Indiquez la commune : le code postal %(code)s correspond à : %(communes)s.",
                                code=postal_code, communes=_listing(_choice_labels(communes))), field="city")
    qualified = _QUALIFIED_CITY.match(city)
    qualifier = qualified.group("code").upper() if qualified else None
    key = _commune_key(qualified.group("name") if qualified else city)
    by_name = [c for c in communes if normalise(c.commune) == key]
    if len(by_name) == 1:
        commune = by_name[0]
        if qualifier is not None and qualifier not in (commune.insee_code, department_of(commune.insee_code)):
            raise BusinessError(_l("La commune %(commune)s du code postal %(code)s est dans le département "
                                   "%(department)s, pas « %(typed)s ».", commune=commune.commune, code=postal_code,
                                   department=department_of(commune.insee_code), typed=qualifier), field="city")
        return commune
    if by_name:
        return _among_namesakes(postal_code, by_name, qualifier, insee_code)
    # The routing label ("ST ETIENNE") is what many people write on envelopes.
    by_routing = [c for c in communes if normalise(c.routing_label) == key]
    if len(by_routing) == 1:
        return by_routing[0]
    if by_routing:
        raise BusinessError(_l("Plusieurs communes partagent le code postal %(code)s et le libellé « %(city)s » : "
                               "%(communes)s. Indiquez le nom exact de la commune.", code=postal_code, city=city,
                               communes=_listing(_choice_labels(by_routing))), field="city")
    raise BusinessError(_l("Le code postal %(code)s correspond à : %(communes)s. "
                           "Corrigez la commune ou le code postal.",
                           code=postal_code, communes=_listing(_choice_labels(communes))), field="city")


def resolve_address(*, street: str | None, address_extra: str | None, postal_code: str | None,
                    city: str | None, insee_code: str | None = None) -> ResolvedAddress:
    """Check a typed address against the postal code reference; raise BusinessError otherwise.

    When communes share the typed name under the postal code (62760 serves two Thièvres), the
    city may name the one meant by its department or INSEE code, "Thièvres (80)", as the city
    field suggests; otherwise ``insee_code``, the commune already stored, settles it.

    Reads only (two small queries): nothing is written, so a caller may validate everything
    before its first write.
    """
    street_text, extra_text = _clean(street), _clean(address_extra)
    code, city_text = (postal_code or "").replace(" ", ""), _clean(city)
    if len(street_text) > STREET_MAX:
        raise BusinessError(_l("L'adresse (voie) ne doit pas dépasser %(max)d caractères.", max=STREET_MAX),
                            field="street")
    if len(extra_text) > STREET_MAX:
        raise BusinessError(_l("Le complément d'adresse ne doit pas dépasser %(max)d caractères.", max=STREET_MAX),
                            field="address_extra")
    if not code:
        raise BusinessError(_l("Le code postal est obligatoire."), field="postal_code")
    if not _POSTAL_CODE.match(code):
        raise BusinessError(_l("Code postal invalide : « %(code)s » (5 chiffres attendus).",
                               code=postal_code.strip()), field="postal_code")
    communes = communes_of(code)
    if not communes:
        if not is_loaded():
            raise BusinessError(_l("Le référentiel des codes postaux n'est pas chargé : l'adresse ne peut pas être "
                                   "vérifiée. Prévenez l'administrateur (flask postal-codes load)."),
                                field="postal_code")
        raise BusinessError(_l("Code postal inconnu : %(code)s. Vérifiez-le.", code=code), field="postal_code")
    commune = _choose_commune(code, city_text, communes, insee_code)
    return ResolvedAddress(
        street=street_text or None,
        address_extra=extra_text or None,
        postal_code=code,
        city=commune.commune,
        insee_code=commune.insee_code,
        territory_id=commune_territory_id(commune.insee_code),
    )


# --- Loading the reference -------------------------------------------------------------------


def _as_commune(insee_code: str, name: str) -> tuple[str, str]:
    for first, last, commune_code, commune_name in ARRONDISSEMENTS:
        if first <= insee_code <= last:
            return commune_code, commune_name
    return insee_code, name


def read_postal_code_file(path: Path | str = DEFAULT_POSTAL_CODE_FILE) -> list[dict[str, str]]:
    """The rows of a ``codes-postaux.json`` file, arrondissements mapped onto their commune,
    one row per (postal code, commune)."""
    with open(path, encoding="utf-8") as handle:
        entries = json.load(handle)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for entry in entries:
        postal_code = str(entry["codePostal"]).strip()
        insee_code, commune = _as_commune(str(entry["codeCommune"]).strip(), entry["nomCommune"].strip())
        rows.setdefault((postal_code, insee_code), {
            "postal_code": postal_code, "insee_code": insee_code, "commune": commune[:CITY_MAX],
            "routing_label": (entry.get("libelleAcheminement") or commune).strip()[:100],
        })
    return list(rows.values())


def replace_postal_codes(rows: list[dict[str, str]], *, batch_size: int = 5000) -> int:
    """Replace the reference's content with rows (in the caller's transaction); the old row count."""
    previous = session.execute(select(func.count()).select_from(PostalCode)).scalar_one()
    session.execute(delete(PostalCode))
    for start in range(0, len(rows), batch_size):
        session.execute(insert(PostalCode), rows[start:start + batch_size])
    return previous


def is_loaded() -> bool:
    return session.execute(select(PostalCode.postal_code).limit(1)).first() is not None
