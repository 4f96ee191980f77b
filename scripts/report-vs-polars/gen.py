#!/usr/bin/env python3
"""Writes the deterministic transactions CSV, byte for byte what
offload_tasks::report::synth::csv(rows, seed) produces (SplitMix64, same draw order).

usage: gen.py OUT.csv [ROWS=1000000] [SEED=42]
"""
import datetime
import sys

MASK = (1 << 64) - 1
CATEGORIES = [
    "Books, Music", "Electronics", "Garden", 'Toys "Deluxe"', "Grocery", "Beauty", "Sports",
    "Automotive", "Office", "Pets", "Baby", "Tools", "Jewelry", "Shoes", "Furniture", "Kitchen",
    "Health", "Software", "Games", "Crafts", "Outdoor", "Lighting", "Travel", "Watches",
]
REGIONS = ["EU-West", "EU-East", "US-East", "US-West", "APAC", "LATAM"]
DESCRIPTIONS = [
    "standard order", "gift, wrapped", "bulk purchase", 'the "big" one', "promo code applied",
    "repeat customer", "web checkout", "in-store pickup",
]


class SplitMix:
    def __init__(self, seed):
        self.s = seed & MASK

    def below(self, n):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return (z ^ (z >> 31)) % n


def field(s):
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    rng = SplitMix(seed)
    start = datetime.date(2024, 1, 1)
    dates = [(start + datetime.timedelta(days=i)).isoformat() for i in range(731)]
    cats = [field(c) for c in CATEGORIES]
    regions = [field(r) for r in REGIONS]
    descs = [field(d) for d in DESCRIPTIONS]
    lines = ["date,category,region,description,quantity,unit_price\n"]
    for _ in range(rows):
        date = dates[rng.below(731)]
        cat = cats[rng.below(24)]
        region = regions[rng.below(6)]
        desc = descs[rng.below(8)]
        q = 1 + rng.below(20)
        if rng.below(50) == 0:
            q = -q
        cents = 50 + rng.below(99_950)
        lines.append(f"{date},{cat},{region},{desc},{q},{cents // 100}.{cents % 100:02d}\n")
    with open(out, "w", newline="") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
