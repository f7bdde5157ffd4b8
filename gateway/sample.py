"""A believable sample county to try SafeGrid with at once.

Placed at the real seat of 镇雄县 (Zhenxiong county, Zhaotong, Yunnan; adcode
530627), taken from the administrative-division data shipped with `cpca`.
Three townships side by side, four villages/communities each, four grid cells
per village (48 cells), a police station per township plus the county
criminal-investigation duty desk, reporters of every role, officers and a
county supervisor. Names are invented; codes follow the 12-digit statistical
division code plus a 3-digit grid suffix.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gateway.access.passwords import hash_secret
from gateway.access.tokens import issue_token
from gateway.records.people import Officer, Reporter
from gateway.records.units import Unit
from geo.gazetteer import division
from grid.documents import GridCell, Station
from grid.linking import neighbours

COUNTY_ADCODE = "530627000000"
COUNTY = COUNTY_ADCODE[:6]

# Degrees per kilometre near 27.4°N.
_KM_LAT = 1 / 110.95
_KM_LON = 1 / 98.6

TOWNSHIPS = (
    # (9-digit township code, name, station code, station name, villages)
    ("530627001", "乌峰街道", "530627-WF", "乌峰派出所",
     ("城南社区", "城北社区", "龙井社区", "塘房社区")),
    ("530627002", "南台街道", "530627-NT", "南台派出所",
     ("南台社区", "白鹤社区", "大湾村", "杉树村")),
    ("530627101", "泼机镇", "530627-PJ", "泼机派出所",
     ("泼机村", "新街村", "黑树村", "营上村")),
)
COUNTY_DESK = ("530627-XJ", "镇雄县公安局刑侦大队值班室")

# Mandated units (强制报告责任单位): (code, name, type, township, village, grid index).
UNITS = (
    ("530627-U01", "城南社区居委会", "residents_committee", 0, 0, 0),
    ("530627-U02", "泼机村村委会", "village_committee", 2, 0, 1),
    ("530627-U03", "镇雄县第一小学", "school", 0, 1, 2),
    ("530627-U04", "南台中学", "school", 1, 0, 3),
    ("530627-U05", "镇雄县人民医院", "hospital", 0, 2, 1),
    ("530627-U06", "泼机镇卫生院", "clinic", 2, 1, 0),
    ("530627-U07", "镇雄县民政局婚姻登记处", "marriage_registry", 0, 3, 3),
    ("530627-U08", "镇雄客运站", "transport", 1, 2, 0),
    ("530627-U09", "城北宾馆", "hotel", 0, 1, 1),
    ("530627-U10", "镇雄县儿童福利院", "welfare", 1, 1, 2),
)

REPORTERS = (
    # (phone, name, role, organisation, township index, village index, grid index, unit,
    #  language)
    ("+8613800001001", "张秀英", "grid_worker", "城南社区居委会", 0, 0, 0, "530627-U01", "zh"),
    ("+8613800001002", "李国强", "grid_worker", "泼机村村委会", 2, 0, 1, "530627-U02", "zh"),
    ("+8613800001003", "王丽", "teacher", "镇雄县第一小学", 0, 1, 2, "530627-U03", "zh"),
    ("+8613800001004", "陈建华", "teacher", "南台中学", 1, 0, 3, "530627-U04", "zh"),
    ("+8613800001005", "刘芳", "medical", "镇雄县人民医院妇产科", 0, 2, 1, "530627-U05", "zh"),
    ("+8613800001006", "杨明", "medical", "泼机镇卫生院", 2, 1, 0, "530627-U06", "ii"),
    ("+8613800001007", "赵敏", "registrar", "镇雄县民政局婚姻登记处", 0, 3, 3, "530627-U07",
     "zh"),
    ("+8613800001008", "黄伟", "child_director", "南台街道便民服务中心", 1, 1, 2, None, "zh"),
    ("+8613800001009", "周强", "transport", "镇雄客运站", 1, 2, 0, "530627-U08", "zh"),
    ("+8613800001010", "吴静", "hotel", "城北宾馆", 0, 1, 1, "530627-U09", "en"),
    ("+8613800001011", "徐磊", "public", "", 1, 3, 3, None, "zh"),
    ("+8613800001012", "孙燕", "public", "", 2, 2, 2, None, "zh"),
)


@dataclass
class SampleCounty:
    """What was built, and the tokens to try the API with (shown once)."""

    county_name: str
    seat: tuple[float, float]
    password: str = ""  # of every sample account, for logging in from the app
    cells: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    stations: dict[str, str] = field(default_factory=dict)


def _rectangle(lon0: float, lat0: float, w_km: float, h_km: float) -> list[list[float]]:
    lon1, lat1 = lon0 + w_km * _KM_LON, lat0 + h_km * _KM_LAT
    return [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]


def cell_code(township: int, village: int, grid: int) -> str:
    """The 15-digit code of a sample grid cell."""
    return f"{TOWNSHIPS[township][0]}{village + 1:03d}{grid + 1:03d}"


def build() -> SampleCounty:
    """Create the sample county (call on an empty database)."""
    seat = division(COUNTY_ADCODE)
    if seat is None:
        raise RuntimeError(f"adcode {COUNTY_ADCODE} missing from the division data")
    county = SampleCounty(county_name=seat.name, seat=(seat.lat, seat.lon),
                          password=secrets.token_urlsafe(9))
    password_hash = hash_secret(county.password)
    # A 6 km x 4 km block centred on the county seat: townships are 2 km wide
    # columns, villages 1 km x 2 km, grid cells 0.5 km x 1 km.
    west = seat.lon - 3 * _KM_LON
    south = seat.lat - 2 * _KM_LAT
    bureau = f"{seat.name}公安局"
    for t, (t_code, t_name, s_code, s_name, villages) in enumerate(TOWNSHIPS):
        Station(code=s_code, name=s_name, county_code=COUNTY, county_bureau=bureau,
                duty_phone=f"+86138000020{t + 1:02d}",
                chief_phone=f"+86138000021{t + 1:02d}").save()
        county.stations[s_code] = s_name
        for v, v_name in enumerate(villages):
            v_lon = west + (2 * t + v % 2) * _KM_LON
            v_lat = south + (v // 2) * 2 * _KM_LAT
            for gi in range(4):
                g_lon = v_lon + (gi % 2) * 0.5 * _KM_LON
                g_lat = v_lat + (gi // 2) * _KM_LAT
                GridCell(
                    code=cell_code(t, v, gi),
                    name=f"{t_name}{v_name}第{gi + 1}网格",
                    ring=_rectangle(g_lon, g_lat, 0.5, 1.0),
                    village_code=f"{t_code}{v + 1:03d}",
                    village_name=v_name,
                    township_code=f"{t_code}000",
                    county_code=COUNTY,
                    station_code=s_code,
                ).save()
                county.cells += 1
    rings = {c.code: [(p[0], p[1]) for p in c.ring] for c in GridCell.objects(county_code=COUNTY)}
    for code, near in neighbours(rings).items():
        GridCell.objects(code=code).update_one(set__neighbours=sorted(near))
    Station(code=COUNTY_DESK[0], name=COUNTY_DESK[1], county_code=COUNTY, county_bureau=bureau,
            kind="county_desk", duty_phone="+8613800002099").save()
    county.stations[COUNTY_DESK[0]] = COUNTY_DESK[1]

    for code, name, kind, t, v, gi in UNITS:
        Unit(code=code, name=name, type=kind, county_code=COUNTY,
             cell_code=cell_code(t, v, gi)).save()
    for phone, name, role, org, t, v, gi, unit, language in REPORTERS:
        reporter = Reporter(phone=phone, name=name, role=role, organisation=org,
                            home_cell=cell_code(t, v, gi), county_code=COUNTY, unit=unit,
                            language=language, password_hash=password_hash).save()
        county.tokens[f"reporter {name} ({role})"] = issue_token(
            # Labels are stored in clear: a role, never a name.
            "reporter", subject_id=reporter.id, county_code=COUNTY, label=f"sample {role}")
    for t, (_, _, s_code, s_name, _) in enumerate(TOWNSHIPS):
        officer = Officer(name=f"{s_name}值班民警", duty_role="duty_officer", station_code=s_code,
                          county_code=COUNTY, phone=f"+86138000030{t + 1:02d}",
                          password_hash=password_hash).save()
        county.tokens[f"officer {s_name} ({s_code})"] = issue_token(
            "officer", subject_id=officer.id, station_code=s_code, county_code=COUNTY,
            label=officer.name)
    chief = Officer(name=f"{TOWNSHIPS[0][3]}所长", duty_role="chief", station_code=TOWNSHIPS[0][2],
                    county_code=COUNTY, phone="+8613800003101",
                    password_hash=password_hash).save()
    county.tokens[f"chief {TOWNSHIPS[0][3]} ({TOWNSHIPS[0][2]})"] = issue_token(
        "officer", subject_id=chief.id, station_code=TOWNSHIPS[0][2], county_code=COUNTY,
        label=chief.name)
    supervisor = Officer(name="县局督导员", duty_role="supervisor", county_code=COUNTY,
                         phone="+8613800003099", password_hash=password_hash).save()
    county.tokens[f"supervisor {bureau}"] = issue_token(
        "supervisor", subject_id=supervisor.id, county_code=COUNTY, label=supervisor.name)
    # The county criminal-investigation duty desk works child cases as a station does.
    desk = Officer(name="刑侦大队值班民警", duty_role="county_desk", station_code=COUNTY_DESK[0],
                   county_code=COUNTY, phone="+8613800003098",
                   password_hash=password_hash).save()
    county.tokens[f"officer {COUNTY_DESK[1]} ({COUNTY_DESK[0]})"] = issue_token(
        "officer", subject_id=desk.id, station_code=COUNTY_DESK[0], county_code=COUNTY,
        label=desk.name)
    county.tokens[f"admin {seat.name} ({COUNTY})"] = issue_token(
        "admin", county_code=COUNTY, label="sample county administrator")
    county.tokens["auditor (reads the audit trail only)"] = issue_token(
        "auditor", county_code=COUNTY, label="sample auditor")
    return county


def is_loaded() -> bool:
    return Station.objects(county_code=COUNTY).first() is not None
