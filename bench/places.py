"""Place names in report text: gazetteer build time and lookups per second, in one run.

The baseline is a scan of the same texts that does one dict probe per
character and nothing else: the least any name-by-name scan can cost. The
ratio lookup / scan says how many such probes a lookup costs, whatever the
machine's load. The corpus mixes texts that name places (full, short, bare,
traditional script) with texts that name none.

Run: .venv/bin/python bench/places.py [--texts N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.locate import best_of_three  # noqa: E402
from geo.gazetteer import Gazetteer  # noqa: E402
from geo.geocoder import locate_text  # noqa: E402

TEXTS = [
    "北京市东城区和平里小学门口有个男的带着两个小孩",
    "在杭州火车站看到一个哭闹的孩子",
    "云南威信县城车站有个女的一直哭，说不是自愿来的",
    "昆明市盤龍區汽車站有人帶著三個孩子乞討",
    "在威信打工的人说村里来了个外地媳妇",
    "长春市朝阳区某小区有人收养来历不明的婴儿",
    "海南有人在网上招聘，骗去外地",
    "村东头新来的外地媳妇不让出门",
    "他说话很大方，祝你平安",
    "小卖部门口有人带着三个孩子乞讨，口音不是本地的",
    "网上招聘说去外地打工包吃包住，已经走了五个姑娘",
    "车牌号不清楚，白色面包车，往县城方向开了",
    "孩子说不认识带他的人，穿红衣服，大概七八岁，被一个中年男子抱上了一辆面包车",
    "鼓楼区医院里有个产妇登记的名字和身份证对不上",
]


def main(argv: list[str] | None = None) -> int:
    """Print build time, lookups/s, locate_text calls/s and their ratios to the scan."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=20_000, help="texts per timed run")
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    gazetteer = Gazetteer()
    build_s = time.perf_counter() - start

    rnd = random.Random(args.seed)
    texts = [rnd.choice(TEXTS) for _ in range(args.texts)]
    probe = {name: True for name in ("杭州", "北京", "昆明")}

    def scan() -> None:
        for text in texts:
            for ch in text:
                probe.get(ch)

    def lookup() -> None:
        for text in texts:
            gazetteer.lookup(text)

    def chain() -> None:
        for text in texts:
            locate_text(text, gazetteer=gazetteer, geocoder=None)

    scan_s, lookup_s, chain_s = best_of_three(scan, lookup, chain)
    n = len(texts)
    print(f"gazetteer build         {build_s:>12.2f} s   ({len(gazetteer):,} names)")
    print(f"scan, 1 probe a char    {n / scan_s:>12,.0f} texts/s (baseline)")
    print(f"Gazetteer.lookup        {n / lookup_s:>12,.0f} texts/s")
    print(f"locate_text (no geocoder) {n / chain_s:>10,.0f} texts/s")
    print(f"ratio lookup / scan     {scan_s / lookup_s:>12.3f}")
    print(f"ratio locate_text / scan {scan_s / chain_s:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
