"""Synthetic French customers for demos and load tests: parties, service points, meters,
contracts, two years of invoices, payments and readings, in the communes of the territory table.

Rows go straight through the driver (COPY on PostgreSQL, executemany on SQLite), bypassing the
ORM and the audit trail: a million customers must load in minutes, and synthetic rows need no
per-row history (the caller records one summary entry). Ids are allocated here from each
table's max(id), so children reference parents without round trips and a second run adds to
the first. Every external_ref starts with "G" and every number has a width the billing exports
do not use (CL + 8 digits, EL-2019 + 7 digits…), so generated rows never collide with imported ones.
"""
from __future__ import annotations

import itertools
import math
import random
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from typing import NamedTuple

import phonenumbers
from faker import Faker
from faker.providers.person import es_ES, fr_BE, fr_CA, fr_CH, fr_FR, it_IT, pt_PT
from sqlalchemy import select

from app import clock
from app.db import session
from app.errors import BusinessError
from app.search.index import search_row
from app.security.models import Territory

CHUNK = 10_000  # customers per round trip: ~800 000 rows, a few hundred MB of tuples at most

COLUMNS = {  # insertion order: parents before children (foreign keys are checked row by row)
    "party": "id number external_ref kind civility first_name last_name company_name birth_date status vulnerable "
             "territory_id created_at updated_at version street address_extra postal_code city insee_code",
    "party_search": "party_id name first_name address scope_paths",
    "party_phone": "id party_id number label position",
    "party_email": "id party_id address position",
    "service_point": "id external_ref kind national_id main_residence territory_id street address_extra "
                     "postal_code city insee_code",
    "meter": "id serial kind",
    "meter_installation": "id meter_id service_point_id installed_on removed_on",
    "contract": "id number external_ref service_point_id status start_date end_date offer",
    "contract_party": "contract_id party_id role",
    "invoice": "id number external_ref contract_id issued_on due_on amount amount_paid status",
    "payment": "id external_ref invoice_id paid_on amount method",
    "meter_reading": "id external_ref meter_id service_point_id read_on index_value kind",
}

NO_ID = ("contract_party", "party_search")  # tables without an id sequence of their own

# Postal codes and populations (thousands) of the demo communes; other communes get a postal
# code built from their département and a middling weight.
KNOWN_COMMUNES = {
    "69123": ([f"6900{i}" for i in range(1, 10)], 522), "69266": (["69100"], 151), "69259": (["69200"], 67),
    "42218": (["42000", "42100"], 173), "42207": (["42400"], 35), "42095": (["42700"], 17), "13005": (["13400"], 48),
    "13055": ([f"130{i:02d}" for i in range(1, 17)], 873), "13001": (["13090", "13100", "13080", "13290"], 147),
    "06088": (["06000", "06100", "06200", "06300"], 343), "06004": (["06600", "06160"], 75),
    "06029": (["06400", "06150"], 74),
}
# Landline zones (01…05) by département; "4" (south-east) for the rest.
LANDLINE_ZONES = {
    "1": "75 77 78 91 92 93 94 95",
    "2": "14 18 22 27 28 29 35 36 37 41 44 45 49 50 53 56 61 72 76 79 85 86",
    "3": "02 08 10 21 25 39 51 52 54 55 57 58 59 60 62 67 68 70 71 80 88 89 90",
    "5": "09 11 12 16 17 19 23 24 31 32 33 40 46 47 64 65 66 81 82 87",
}
COMMON_STREETS = (
    "rue de la République", "rue Victor-Hugo", "avenue Jean-Jaurès", "boulevard Gambetta", "rue Pasteur",
    "place de la Mairie", "rue de l'Église", "avenue du Général-de-Gaulle", "rue Jules-Ferry", "impasse des Lilas",
    "allée des Tilleuls", "chemin des Vignes", "rue du Moulin", "rue de la Gare", "cours Lafayette",
    "rue des Écoles", "rue Émile-Zola", "avenue Foch", "rue Voltaire", "rue Paul-Bert", "montée des Roches",
    "quai Saint-Vincent", "rue Anatole-France", "avenue de la Libération", "rue du 8-Mai-1945",
)
RESIDENCES = ("Résidence Les Tilleuls", "Résidence du Parc", "Le Clos Fleuri", "Les Terrasses du Lac",
              "Résidence Bellevue", "Le Hameau des Pins", "Les Jardins de Provence")
EXTRAS = ("Bât. A", "Bât. B", "Bât. C", "Apt 12", "Apt 3", "Escalier 2", "3e étage", "BP 42") + RESIDENCES[:3]
ORG_FORMS = ("Boulangerie {l} SARL", "Boucherie {l}", "Pharmacie {l}", "Garage {l} SAS", "SCI {l}-{l2}",
             "Cabinet {l} et Associés", "Syndicat des copropriétaires {r}", "Syndic de copropriété {r}",
             "Plomberie {l} EURL", "Restaurant Chez {f}", "{c}", "{c}")
DOMAINS = ("example.fr", "example.com", "example.net", "example.org", "mail.example", "courriel.example")
METHODS, METHOD_WEIGHTS = ("prelevement", "carte", "virement", "cheque", "especes"), (65, 13, 9, 10, 3)
COMPOUND_MALE = ("Jean-Baptiste", "Jean-Pierre", "Jean-Luc", "Jean-Marc", "Pierre-Yves", "Jean-François")
COMPOUND_FEMALE = ("Marie-Claire", "Anne-Sophie", "Marie-Hélène", "Marie-Laure", "Anne-Marie", "Marie-Christine")


class Kind(NamedTuple):
    prefix: str  # contract number
    meter: str  # meter serial
    offers: tuple[str, ...]  # the last one is for organisations
    cents: tuple[int, int]  # clamp of an invoice amount
    base: tuple[int, int]  # a contract's average invoice, euros
    season: float  # amplitude of the winter peak (negative: summer peak)
    unit: int  # cents per kWh or m³, to turn an amount into consumption
    step: int  # months between invoices
    due: int  # days to pay


KINDS = {
    "electricity": Kind("EL", "LKY", ("Électricité Base 6 kVA", "Électricité Base 9 kVA", "Heures Creuses 9 kVA",
                                      "Heures Creuses 12 kVA", "Tempo 9 kVA", "Électricité Pro 36 kVA"),
                        (4000, 18000), (45, 130), 0.25, 25, 1, 15),
    "gas": Kind("GA", "GAZ", ("Gaz Base", "Gaz Confort", "Gaz Référence", "Gaz professionnel"),
                (3000, 25000), (70, 125), 0.8, 12, 1, 15),
    "water": Kind("EA", "EAU", ("Eau résidentielle", "Eau professionnelle"), (4000, 12000), (45, 100), -0.12, 420,
                  2, 30),
}
FIRST_KIND, FIRST_KIND_WEIGHTS = tuple(KINDS), (55, 20, 25)
# Seasonal factor of each kind for months 1..12 (index 0 unused).
SEASON = {k: [0.0] + [1 + v.season * math.cos(2 * math.pi * (m - 1) / 12) for m in range(1, 13)]
          for k, v in KINDS.items()}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _slug(text: str) -> str:
    return "".join(c for c in _ascii(text).lower() if c.isalnum() or c in "-.")


def _allocated(prefix: str, width: int) -> list[str]:
    """prefix + each block of `width` digits that the numbering plan allocates (phonenumbers'
    metadata: 0639, 0640… are not), so that every generated number passes the import's checks."""
    blocks = (f"{prefix}{b:0{width}d}" for b in range(10**width))
    return [p for p in blocks if all(phonenumbers.is_valid_number(phonenumbers.parse(p + d * (12 - len(p))))
                                     for d in "09")]


def _names(*providers, weights) -> list[str]:
    """A pool where a name's frequency follows its provider's weight (French names first)."""
    return [name for provider, weight in zip(providers, weights, strict=True) for name in provider * weight]


def _pools(seed: int) -> dict[str, list[str]]:
    """Names and streets built once: Faker is far too slow to call per row."""
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    p = [m.Provider for m in (fr_FR, fr_BE, fr_CA, fr_CH, it_IT, es_ES, pt_PT)]
    return {
        # fr_BE brings the Maghrebi, Italian and Portuguese first names common in France too.
        "male": _names(tuple(p[0].first_names_male), tuple(p[1].first_names_male)[:300], COMPOUND_MALE,
                       weights=(6, 1, 4)),
        "female": _names(tuple(p[0].first_names_female), tuple(p[1].first_names_female)[:300], COMPOUND_FEMALE,
                         weights=(5, 1, 4)),
        "last": _names(*(tuple(x.last_names)[:400] for x in p), weights=(8, 1, 1, 1, 1, 1, 2)),
        "streets": list(dict.fromkeys(fake.street_name() for _ in range(3000))),
        "companies": [fake.company() for _ in range(500)],
        "mobiles": [_allocated("+336", 3), _allocated("+337", 3)],  # 07: 73…79 only
    }


class Commune(NamedTuple):
    territory_id: int
    path: str  # the territory's, for the search index's scope
    insee: str
    name: str
    streets: list[tuple[str, str]]  # (street, postal code): one street, one postal code
    landlines: list[str]  # allocated prefixes of the commune's zone, "+33478"…


def _communes(rows, streets: list[str], rng: random.Random) -> tuple[list[Commune], list[float]]:
    communes, weights, landlines = [], [], {}
    for territory_id, path, insee, name in rows:
        dept = "20" if insee[:2] in ("2A", "2B") else insee[:2]
        codes, population = KNOWN_COMMUNES.get(insee, ([f"{dept}{int(insee[2:]) % 100 * 10:03d}"], 40))
        zone = next((z for z, depts in LANDLINE_ZONES.items() if dept in depts.split()), "4")
        # The most common real street names everywhere, plus Faker's; one postal code per street.
        own = [(street, rng.choice(codes)) for street in COMMON_STREETS + tuple(rng.sample(streets, 375))]
        if zone not in landlines:
            landlines[zone] = _allocated(f"+33{zone}", 2)
        communes.append(Commune(territory_id, path, insee, name, own, landlines[zone]))
        weights.append(population)
    return communes, list(itertools.accumulate(weights))


class Generator:
    """Builds the rows of `count` customers at a time, as tuples in COLUMNS order."""

    def __init__(self, *, seed: int, start_ids: dict[str, int], communes, today: date, postgresql: bool) -> None:
        # Seeded by the first party id too, so that a second run does not repeat the first's people.
        self.r = random.Random(f"{seed}-{start_ids['party']}")
        self.pools = _pools(seed)
        self.communes, self.cum = _communes(communes, self.pools["streets"], self.r)
        self.ids = {table: itertools.count(start + 1) for table, start in start_ids.items()}
        self.today = today
        self.window = today - timedelta(days=730)
        self.months = [(y, m) for y in range(self.window.year, today.year + 1) for m in range(1, 13)
                       if (self.window.year, self.window.month) <= (y, m) <= (today.year, today.month)]
        # The drivers' own types: SQLite stores dates as ISO text and Money as integer cents.
        self.day = (lambda d: d) if postgresql else (lambda d: d and d.isoformat())
        self.money = (lambda c: f"{c // 100}.{c % 100:02d}") if postgresql else int
        self.now = clock.now() if postgresql else clock.now().strftime("%Y-%m-%d %H:%M:%S.%f")

    def generate(self, count: int) -> dict[str, list[tuple]]:
        self.rows = {table: [] for table in COLUMNS}
        for _ in range(count):
            self._household()
        return self.rows

    def _household(self) -> None:
        """A customer, their contracts (0, 1 or 2), and sometimes a co-holder or a payer."""
        r = self.r
        commune = r.choices(self.communes, cum_weights=self.cum)[0]
        address = self._address(commune)
        party_id, org = next(self.ids["party"]), r.random() < 0.05
        names = self._organisation() if org else self._person()
        u = r.random()
        n = 0 if u < 0.03 else 1 if u < 0.90 else 2
        late = r.random() < 0.068  # 1-3 overdue invoices on the first active contract: ~6 % of customers
        statuses, first_kind, seen_from = [], None, [commune]
        for i in range(n):
            kind = r.choices(FIRST_KIND, FIRST_KIND_WEIGHTS)[0] if i == 0 else \
                r.choice([k for k in KINDS if k != first_kind])
            first_kind = first_kind or kind
            elsewhere = i == 1 and r.random() < 0.2  # a secondary residence, or the business's premises
            where = r.choices(self.communes, cum_weights=self.cum)[0] if elsewhere else commune
            main = not org and not elsewhere and (r.random() < 0.9 if i == 0 else statuses[0][1])
            status, contract_id = self._contract(kind, where, self._address(where) if elsewhere else address,
                                                 main, org, late)
            late = late and status != "active"
            seen_from.append(where)
            statuses.append((status, main))
            self.rows["contract_party"].append((contract_id, party_id, "holder"))
            if not org and r.random() < (0.10 if i == 0 else 0.02):
                self._extra_party(contract_id, status, "co_holder", commune, address, names[2], where)
            elif r.random() < 0.015:
                home = r.choices(self.communes, cum_weights=self.cum)[0]
                self._extra_party(contract_id, status, "payer", home, self._address(home), None, where)
        self._party(party_id, commune, address, names, self._status([s for s, _ in statuses]), org, seen_from)

    @staticmethod
    def _status(contract_statuses: list[str]) -> str:  # as billing_import.refresh_party_statuses derives it
        return ("customer" if {"active", "pending"} & set(contract_statuses)
                else "former_customer" if contract_statuses else "prospect")

    def _extra_party(self, contract_id, status, role, commune, address, last_name, contract_commune) -> None:
        """A spouse on the same address (co-holder) or a relative elsewhere paying the bills, on a
        contract whose premises are in contract_commune."""
        party_id = next(self.ids["party"])
        self.rows["contract_party"].append((contract_id, party_id, role))
        names = self._person(last_name if self.r.random() < 0.7 else None)
        self._party(party_id, commune, address, names, self._status([status]), False, [commune, contract_commune])

    def _person(self, last_name: str | None = None) -> tuple:
        r, pools = self.r, self.pools
        female = r.random() < 0.52
        first = r.choice(pools["female" if female else "male"])
        if last_name is None:  # 3 % double-barrelled
            last_name = r.choice(pools["last"]) + (f"-{r.choice(pools['last'])}" if r.random() < 0.03 else "")
        birth = self.today - timedelta(days=int(365.25 * min(98.0, max(18.5, r.gauss(52, 17)))))
        return "Mme" if female else "M.", first, last_name, None, birth

    def _organisation(self) -> tuple:
        r, pools = self.r, self.pools
        name = r.choice(ORG_FORMS).format(l=r.choice(pools["last"]), l2=r.choice(pools["last"]),
                                          f=r.choice(pools["male"]), r=r.choice(RESIDENCES),
                                          c=r.choice(pools["companies"]))
        return None, None, None, name, None

    def _party(self, party_id, commune, address, names, status, org, seen_from: list[Commune]) -> None:
        """The party's rows; seen_from: its commune and those of its contracts' premises."""
        r = self.r
        civility, first, last, company, birth = names
        u = r.random()  # typing noise of real billing data
        if u < 0.02:
            first, last, company = (x and x.upper() for x in (first, last, company))
        elif u < 0.04:
            first, last, company = (x and _ascii(x) for x in (first, last, company))
        self.rows["party"].append((
            party_id, f"CL{party_id:08d}", f"GBP{party_id:09d}", "organisation" if org else "person", civility,
            first, last, company, self.day(birth), status, not org and r.random() < 0.03, commune.territory_id,
            self.now, self.now, 1, *address, commune.name, commune.insee))
        self.rows["party_search"].append(tuple(search_row(
            party_id, last_name=last, first_name=first, company_name=company, street=address[0],
            address_extra=address[1], postal_code=address[2], city=commune.name,
            scope_paths=[c.path for c in seen_from]).values()))
        self._phones(party_id, commune.landlines, org)
        if r.random() < (0.8 if org else 0.7):
            local = "contact" if org else self._email_local(first, last, birth)
            domain = f"{_slug(company)[:30]}.example" if org else r.choice(DOMAINS)
            self.rows["party_email"].append((next(self.ids["party_email"]), party_id, f"{local}@{domain}", 0))

    def _email_local(self, first: str, last: str, birth: date) -> str:
        f, last_ = _slug(first), _slug(last)
        return self.r.choice((f"{f}.{last_}", f"{f[0]}{last_}", f"{last_}.{f}", f"{f}.{last_}{birth.year % 100:02d}",
                              f"{f}{last_}{self.r.randint(1, 99)}"))

    def _phones(self, party_id: int, landlines: list[str], org: bool) -> None:
        r, pools = self.r, self.pools
        labels = ["work"] if org else ["mobile" if r.random() < 0.85 else "home"]
        if r.random() < 0.3:
            labels.append("mobile" if labels[0] != "mobile" else r.choice(("home", "work")))
        for position, label in enumerate(labels):  # E.164: the region's landlines (+33 4 78…), 06 or 07 mobiles
            prefix = r.choice(landlines if label != "mobile" else pools["mobiles"][r.random() > 0.72])
            width = 12 - len(prefix)
            number = f"{prefix}{r.randrange(10**width):0{width}d}"
            self.rows["party_phone"].append((next(self.ids["party_phone"]), party_id, number, label, position))

    def _address(self, commune: Commune) -> tuple[str, str | None, str]:
        r = self.r
        street, postal = r.choice(commune.streets)
        street = street.replace(" ", "  ", 1) if r.random() < 0.01 else street  # typing noise
        suffix = " bis" if r.random() < 0.03 else ""
        extra = r.choice(EXTRAS) if r.random() < 0.15 else None
        return f"{r.randint(1, 160)}{suffix} {street}", extra, postal

    def _lifecycle(self) -> tuple[str, date, date | None]:
        r, today = self.r, self.today
        u = r.random()
        if u < 0.08:
            end = today - timedelta(days=r.randint(1, 1100))
            return "terminated", end - timedelta(days=r.randint(200, 4000)), end
        if u < 0.09:
            return "pending", today + timedelta(days=r.randint(1, 30)), None
        return "active", today - timedelta(days=r.randint(20, 7000)), None

    def _contract(self, kind_name, commune, address, main, org, late) -> tuple[str, int]:
        r, kind = self.r, KINDS[kind_name]
        sp_id, contract_id = next(self.ids["service_point"]), next(self.ids["contract"])
        if kind_name == "water":
            national = f"EAU-{commune.insee}-{sp_id:07d}"
        else:  # a multiplier prime to 10: a bijection on 14 digits, so unique ids that look random
            national = f"{sp_id * 61_803_398_874_989 % 10**14:014d}"
        self.rows["service_point"].append((sp_id, f"GSP{sp_id:09d}", kind_name, national, main, commune.territory_id,
                                           *address, commune.name, commune.insee))
        status, start, end = self._lifecycle()
        offer = kind.offers[-1] if org else r.choice(kind.offers[:-1])
        self.rows["contract"].append((contract_id, f"{kind.prefix}-{start.year}-{contract_id:07d}",
                                      f"GCT{contract_id:09d}", sp_id, status, self.day(start), self.day(end), offer))
        meter_id = self._meters(sp_id, kind_name, start)
        if status != "pending":
            self._bill(contract_id, sp_id, meter_id, kind_name, start, end, late and status == "active")
        return status, contract_id

    def _meters(self, sp_id: int, kind_name: str, start: date) -> int:
        """The current meter, and for 5 % of service points the one it replaced that day."""
        r, rows, prefix = self.r, self.rows, KINDS[kind_name].meter
        installed = start - timedelta(days=r.randint(7, 3000))  # before the contract's first reading
        if r.random() < 0.05:
            old = next(self.ids["meter"])
            rows["meter"].append((old, f"{prefix}-G{old:09d}", kind_name))
            rows["meter_installation"].append((next(self.ids["meter_installation"]), old, sp_id,
                                               self.day(installed - timedelta(days=r.randint(1500, 6000))),
                                               self.day(installed)))
        meter_id = next(self.ids["meter"])
        rows["meter"].append((meter_id, f"{prefix}-G{meter_id:09d}", kind_name))
        rows["meter_installation"].append((next(self.ids["meter_installation"]), meter_id, sp_id,
                                           self.day(installed), None))
        return meter_id

    def _bill(self, contract_id, sp_id, meter_id, kind_name, start, end, late) -> None:
        """Invoices of the last two years, a payment for each paid one, a reading per period."""
        r, today, kind, season = self.r, self.today, KINDS[kind_name], SEASON[kind_name]
        first, last, day = max(start, self.window), min(end or today, today), r.randint(1, 28)
        months = self.months[r.randrange(kind.step)::kind.step]  # water: every other month
        issues = [d for y, m in months if first <= (d := date(y, m, day)) <= last]
        due_delay = timedelta(days=kind.due)
        past_due = sum(1 for d in issues if d + due_delay < today)
        late_from = max(0, past_due - r.randint(1, 3)) if late else len(issues)  # overdue: [late_from, past_due)
        base, index = r.uniform(*kind.base) * 100, r.randint(500, 40_000)
        method = r.choices(METHODS, METHOD_WEIGHTS)[0]
        lo, hi = kind.cents
        invoices, payments, readings = self.rows["invoice"], self.rows["payment"], self.rows["meter_reading"]
        for i, issued in enumerate(issues):
            due = issued + due_delay
            amount = min(hi, max(lo, int(base * season[issued.month] * r.uniform(0.92, 1.08))))
            invoice_id, paid, status = next(self.ids["invoice"]), amount, "paid"
            paid_on = min(due - timedelta(days=r.randint(0, 10)), today)
            if late_from <= i < past_due:
                paid = 0 if r.random() < 0.6 else int(amount * r.uniform(0.2, 0.8))
                status = "partially_paid" if paid else "open"
                paid_on = issued + timedelta(days=r.randint(3, 12))
            elif due >= today and r.random() < 0.75:  # not yet due: usually still open
                paid, status = 0, "open"
            invoices.append((invoice_id, f"F{issued.year}-G{invoice_id:09d}", f"GIN{invoice_id:010d}", contract_id,
                             self.day(issued), self.day(due), self.money(amount), self.money(paid), status))
            if paid:
                payment_id = next(self.ids["payment"])
                payments.append((payment_id, f"GPM{payment_id:010d}", invoice_id, self.day(paid_on),
                                 self.money(paid), method))
            index += amount // kind.unit
            u = r.random()
            reading_id = next(self.ids["meter_reading"])
            readings.append((reading_id, f"GRD{reading_id:010d}", meter_id, sp_id,
                             self.day(issued - timedelta(days=r.randint(1, 5))), index,
                             "actual" if u < 0.75 else "estimated" if u < 0.95 else "customer"))


def _write_postgresql(raw, rows: dict[str, list[tuple]]) -> None:
    with raw.cursor() as cursor:
        for table, data in rows.items():
            if data:
                with cursor.copy(f"COPY {table} ({', '.join(COLUMNS[table].split())}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)


def _write_sqlite(raw, rows: dict[str, list[tuple]]) -> None:
    for table, data in rows.items():
        if data:
            columns = COLUMNS[table].split()
            raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (our own table names)
                            f"VALUES ({', '.join('?' * len(columns))})", data)


def generate_customers(*, count: int, seed: int = 1, progress: Callable[[int], None] = lambda n: None,
                       today: date | None = None) -> dict[str, int]:
    """Add `count` customers (plus their co-holders and payers) in the session's transaction and
    return the rows written per table. progress(n) is called with the customers of each chunk.
    The caller commits and records the audit entry."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    postgresql = connection.dialect.name == "postgresql"
    communes = session.execute(
        select(Territory.id, Territory.path, Territory.insee_code, Territory.name)
        .where(Territory.kind == "commune", Territory.insee_code.is_not(None)).order_by(Territory.insee_code)).all()
    if not communes:
        raise BusinessError("Aucune commune dans les territoires : lancez d'abord « flask seed ».")
    start_ids = {table: connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar()  # noqa: S608
                 for table in COLUMNS if table not in NO_ID}
    generator = Generator(seed=seed, start_ids=start_ids, communes=communes, today=today or clock.now().date(),
                          postgresql=postgresql)
    if postgresql:
        totals = _load(generator, count, lambda rows: _write_postgresql(raw, rows), progress, overlap=True)
        for table in (t for t, n in totals.items() if n and t not in NO_ID):  # the ids were ours:
            connection.exec_driver_sql(  # move the sequences past them for the ORM's next inserts
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")  # noqa: S608
        # Fresh statistics: with the pre-load ones the planner misjudges the scope joins
        # (measured: 183 ms instead of 1 ms for a party's contracts at a million customers).
        for table in COLUMNS:
            connection.exec_driver_sql(f"ANALYZE {table}")
        return totals
    with _sqlite_cache(raw):
        return _load(generator, count, lambda rows: _write_sqlite(raw, rows), progress, overlap=False)


def _load(generator: Generator, count: int, write, progress, *, overlap: bool) -> dict[str, int]:
    sizes = [min(CHUNK, count - done) for done in range(0, count, CHUNK)]
    totals = dict.fromkeys(COLUMNS, 0)
    for size, rows in zip(sizes, _chunks(generator, sizes, overlap), strict=True):
        write(rows)
        for table, data in rows.items():
            totals[table] += len(data)
        progress(size)
    return totals


def _chunks(generator: Generator, sizes: list[int], overlap: bool):
    """The rows of each chunk; with overlap, the next one is built in a thread while the caller writes
    this one: PostgreSQL's server is the bottleneck (on SQLite both compete for the GIL: slower)."""
    if not overlap or not sizes:
        yield from (generator.generate(size) for size in sizes)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:  # one worker: the random sequence stays deterministic
        following = pool.submit(generator.generate, sizes[0])
        for size in sizes[1:] + [None]:
            rows = following.result()
            following = size and pool.submit(generator.generate, size)
            yield rows


@contextmanager
def _sqlite_cache(raw):
    """The default 2 MB page cache thrashes on the indexes of the big tables: 256 MB meanwhile."""
    cache_size = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute("PRAGMA cache_size = -262144")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(cache_size)}")
