"""A pinned subset of UN/LOCODE and the legacy Chinese port aliases, as Python constants.

The same rows live in ``gateway/data/unlocode.csv`` and ``gateway/data/unlocode_aliases.csv`` (the files a
human reviews and updates); a unit test fails when this module and the CSV files disagree. The core does
no file I/O, so the data is embedded here.

Rule 1: the snapshot is a *subset*: a code that is absent is not proof that the location does not exist;
        callers decide whether an unknown code is acceptable (``check_locode(..., require_known=...)``).
Rule 2: a legacy alias maps a code still used by carriers for a *port* to the current port entry; it is
        applied only where a port is expected, never to rewrite signed bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# Where the rows come from; bump it together with the CSV files.
SNAPSHOT = "UN/LOCODE subset, UNECE data via geoapify/un-locode snapshot 2024-10-28"

# Function classifier positions (1-based in the standard): 1 port, 2 rail, 3 road, 4 airport, 5 postal
# exchange office, 6 multimodal, 7 fixed installation, B border crossing; "-" where it does not apply.
FUNCTION_PORT = "1"
FUNCTION_AIRPORT = "4"


@dataclass(frozen=True, slots=True)
class Location:
    code: str  # 5 characters: ISO 3166-1 alpha-2 country + 3 location characters
    name: str
    function: str  # the 8-position function classifier, e.g. "12345---"

    def has_function(self, function: str) -> bool:
        """True when the classifier carries ``function`` (a single classifier character, e.g. "1")."""
        return function in self.function.replace("-", "")

    @property
    def is_port(self) -> bool:
        return self.has_function(FUNCTION_PORT)


@dataclass(frozen=True, slots=True)
class LegacyAlias:
    legacy: str  # the code carriers still send, e.g. CNSHA
    current: str  # the port entry it is read as, e.g. CNSHG
    note: str


_LOCATION_ROWS: tuple[tuple[str, str, str], ...] = (
    ("AEJEA", "Jebel Ali", "1-------"),
    ("BEANR", "Antwerpen", "12345---"),
    ("BEZEE", "Zeebrugge", "1-3-----"),
    ("CNDAL", "Dalian", "12-45---"),
    ("CNDLC", "Dalian Zhoushuizi International Apt", "---4----"),
    ("CNLYG", "Lianyungang", "1-------"),
    ("CNNBG", "Ningbo Pt", "1-------"),
    ("CNNBO", "Ningbo", "12-4----"),
    ("CNNGB", "Ningbo Lishe International Apt", "---4----"),
    ("CNNSA", "Nansha Pt", "1-------"),
    ("CNQDG", "Qingdao Pt", "1-------"),
    ("CNSGH", "Shanghai", "12345---"),
    ("CNSHA", "Shanghai Hongqiao International Apt", "---4----"),
    ("CNSHG", "Shanghai Pt", "1-------"),
    ("CNSHK", "Shekou Pt", "1-------"),
    ("CNSZP", "Shenzhen Pt", "1-------"),
    ("CNSZX", "Shenzhen Baoan International Apt", "---4----"),
    ("CNTAC", "Taicang Pt", "1-------"),
    ("CNTAO", "Qingdao Jiaodong International Apt", "---4----"),
    ("CNTSN", "Tianjin Binhai International Apt", "---4----"),
    ("CNTXG", "Tianjin Xingang Pt", "1-------"),
    ("CNXAM", "Xiamen", "12-45---"),
    ("CNXMN", "Xiamen Gaoqi International Apt", "---4----"),
    ("CNYTN", "Yantian", "1-------"),
    ("DEBRV", "Bremerhaven", "1234----"),
    ("DEDUI", "Duisburg", "1234----"),
    ("DEHAM", "Hamburg", "12345---"),
    ("ESALG", "Algeciras", "1-------"),
    ("ESVLC", "Valencia", "12345---"),
    ("FRLEH", "Le Havre", "12345---"),
    ("GBFXT", "Felixstowe", "1-------"),
    ("GBLGP", "London Gateway Port", "123--6--"),
    ("GBSOU", "Southampton", "1--4----"),
    ("GRPIR", "Piraeus", "1-------"),
    ("HKHKG", "Hong Kong", "1--45---"),
    ("ITGOA", "Genova", "12345---"),
    ("JPTYO", "Tokyo", "12345---"),
    ("JPYOK", "Yokohama", "12345---"),
    ("KRPUS", "Busan", "1234567-"),
    ("LKCMB", "Colombo", "12345---"),
    ("MAPTM", "Tanger Med", "123-----"),
    ("MYPKG", "Port Klang", "123-5---"),
    ("MYTPP", "Tanjung Pelepas", "123-----"),
    ("NLRTM", "Rotterdam", "12345---"),
    ("PLGDN", "Gdansk", "1--4----"),
    ("PLMAA", "Malaszewicze", "-23-----"),
    ("SGSIN", "Singapore", "1--45---"),
    ("TWKHH", "Kaohsiung", "1--4----"),
    ("USLAX", "Los Angeles", "1--45---"),
    ("USLGB", "Long Beach", "1234----"),
    ("USNYC", "New York", "12345---"),
    ("USSAV", "Savannah", "1--4----"),
)

_ALIAS_ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "CNCWN",
        "CNSHK",
        "Chiwan merged into Shekou Pt; carriers switched in 2017",
    ),
    (
        "CNDLC",
        "CNDAL",
        "legacy code for Dalian port; CNDLC is Dalian Zhoushuizi airport in current UN/LOCODE",
    ),
    (
        "CNNGB",
        "CNNBG",
        "legacy code for Ningbo port; CNNGB is Ningbo Lishe airport in current UN/LOCODE",
    ),
    (
        "CNSHA",
        "CNSHG",
        "legacy code for Shanghai port; CNSHA is Shanghai Hongqiao airport in current UN/LOCODE",
    ),
    (
        "CNSZX",
        "CNSZP",
        "legacy code for Shenzhen port; CNSZX is Shenzhen Baoan airport in current UN/LOCODE",
    ),
    (
        "CNTAO",
        "CNQDG",
        "legacy code for Qingdao port; CNTAO is Qingdao Jiaodong airport in current UN/LOCODE",
    ),
    (
        "CNTSN",
        "CNTXG",
        "legacy code for Tianjin port; CNTSN is Tianjin Binhai airport in current UN/LOCODE",
    ),
    (
        "CNXMN",
        "CNXAM",
        "legacy code for Xiamen port; CNXMN is Xiamen Gaoqi airport in current UN/LOCODE",
    ),
)

LOCATIONS: Mapping[str, Location] = MappingProxyType(
    {code: Location(code, name, function) for code, name, function in _LOCATION_ROWS}
)
LEGACY_ALIASES: Mapping[str, LegacyAlias] = MappingProxyType(
    {legacy: LegacyAlias(legacy, current, note) for legacy, current, note in _ALIAS_ROWS}
)
