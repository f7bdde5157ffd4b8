"""SMS grammar parse speed against str.split over the same corpus, in one run.

Run: .venv/bin/python bench/sms_parse.py [--messages N] [--repeats K]
Target (ARCHITECTURE.md): >= 20,000 messages/s on one core; exits 1 when missed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable

from sms.grammar import KINDS, parse

TARGET = 20_000

FIRST = {
    "report": ["R", "r", "BG", "报告", "举报", "1"],
    "sighting": ["S", "s", "发现", "线索", "2"],
    "swept": ["OK", "ok", "已排查", "排查", "3"],
    "status": ["Q", "q", "查询", "4"],
    "help": ["H", "HELP", "help", "?", "？", "帮助", "0", ""],
    "unsubscribe": ["TD", "退订", "STOP", "stop"],
}
CATEGORY_TOKENS = [
    *"123456789",
    "CHILD", "woman", "Origin", "LABOUR", "adopt", "BIRTH", "ABUSE", "online", "OTHER",
    "拐卖儿童", "拐儿童", "儿童", "偷抢儿童", "拐卖妇女", "妇女", "买卖婚姻", "来历不明",
    "来历不明儿童", "强迫劳动", "强迫乞讨", "乞讨", "童工", "非法收养", "非法送养", "买卖婴儿",
    "可疑分娩", "冒名分娩", "代孕", "性侵", "性侵未成年人", "网络", "网络诱骗", "招聘诱骗", "其他",
    "不知道", "X",  # unknown: becomes UNCLASSIFIED
]  # fmt: skip
DETAILS_ZH = [
    "穿红衣男孩被陌生人抱上面包车",
    "村东头新来的外地媳妇不让出门",
    "在车站看到一个哭闹的小女孩，跟着一个中年男子",
    "小卖部门口有人带着三个孩子乞讨，口音不是本地的",
    "医院里有个产妇登记的名字和身份证对不上",
    "网上招聘说去外地打工包吃包住，已经走了五个姑娘",
    "车牌号不清楚，白色面包车，往县城方向开了",
    "孩子说不认识带他的人",
]
DETAILS_EN = [
    "boy taken into van",
    "girl crying at the bus station with a man",
    "woman locked in the house, neighbours say she was bought",
    "kids begging near the market every day",
    "white minivan heading north on the county road",
]
FREE_TEXT = [
    "村里来了个陌生人带着哭闹的小孩",
    "我们学校有个学生三天没来了，家长说孩子被亲戚带走了",
    "刚才在高速服务区看到一个小孩一直哭，抱他的人很紧张",
    "隔壁新娶的媳妇听不懂中国话，一直被锁在屋里，可能是拐卖妇女",
    "有人在网络上找人代孕，给五万块",
    "some one is selling a baby near the hospital",
    "please help a child is missing since this morning",
    "其他情况，村口的砖厂好像有童工",
    "来历不明儿童 在村小学旁边",
    "Ask about my report",
]
SEPARATORS = [" ", " ", " ", "  ", ",", "，", "、", ";", "：", "#", "*", "\n", "\t", " , "]
FULL_WIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def grid(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice((9, 12, 12, 12, 15))))
    if rng.random() < 0.2:
        digits = f"{digits[:6]}-{digits[6:9]}-{digits[9:]}".rstrip("-")
    return digits


def location(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return ""
    if roll < 0.95:
        return rng.choice(("@", "@", "G", "网格")) + grid(rng)
    return "@" + str(rng.randrange(10**6))  # malformed: bad_grid_code


def details(rng: random.Random) -> str:
    text = rng.choice(DETAILS_ZH if rng.random() < 0.75 else DETAILS_EN)
    if rng.random() < 0.05:
        text = " ".join([text] * 12)  # a long, multi-part SMS
    return text


def join(rng: random.Random, tokens: list[str]) -> str:
    tokens = [token for token in tokens if token]
    out = tokens[0] if tokens else ""
    for token in tokens[1:]:
        out += rng.choice(SEPARATORS) + token
    return out


def message(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.30:
        category = rng.choice(CATEGORY_TOKENS)
        text = join(rng, [rng.choice(FIRST["report"]), category, location(rng), details(rng)])
    elif roll < 0.40:
        # The numeric form feature phones use: 1 <digit> <bare grid code> ...
        text = join(rng, ["1", rng.choice("123456789"), grid(rng), details(rng)])
    elif roll < 0.50:
        code = str(rng.randrange(10**6)).zfill(6) if rng.random() < 0.9 else "4029"
        text = join(rng, [rng.choice(FIRST["sighting"]), code, location(rng), details(rng)])
    elif roll < 0.58:
        code = str(rng.randrange(10**6)).zfill(6)
        text = join(rng, [rng.choice(FIRST["swept"]), code, location(rng)])
    elif roll < 0.64:
        code = "R" + "".join(rng.choice(CROCKFORD) for _ in range(6))
        text = join(
            rng, [rng.choice(FIRST["status"]), code.lower() if rng.random() < 0.3 else code]
        )
    elif roll < 0.68:
        text = rng.choice(FIRST["help"])
    elif roll < 0.71:
        text = rng.choice(FIRST["unsubscribe"])
    else:
        text = rng.choice(FREE_TEXT)
        if rng.random() < 0.3:
            text = f"{text} {location(rng)}".strip()
    if rng.random() < 0.15:
        text = text.translate(FULL_WIDTH)
    return text


def corpus(size: int, seed: int = 20210401) -> list[str]:
    rng = random.Random(seed)
    return [message(rng) for _ in range(size)]


def best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    messages = corpus(max(args.messages, 10_000))

    kinds = Counter(parse(text).kind for text in messages)
    missing = set(KINDS) - set(kinds)
    if missing:
        print(f"corpus lacks kinds: {sorted(missing)}", file=sys.stderr)
        return 2

    def run_parse() -> None:
        for text in messages:
            parse(text)

    def run_split() -> None:
        for text in messages:
            text.split()

    parse_s = best_of(args.repeats, run_parse)
    split_s = best_of(args.repeats, run_split)
    parse_rate = len(messages) / parse_s
    split_rate = len(messages) / split_s
    met = parse_rate >= TARGET

    print(f"corpus: {len(messages)} messages, best of {args.repeats}")
    print("kinds: " + ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS))
    print(f"parse:     {parse_rate:12,.0f} messages/s")
    print(f"str.split: {split_rate:12,.0f} messages/s")
    print(f"ratio parse/str.split: {parse_rate / split_rate:.3f} ({parse_s / split_s:.1f}x slower)")
    print(f"target >= {TARGET:,} messages/s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
