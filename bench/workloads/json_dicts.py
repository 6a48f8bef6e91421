"""json_dicts.py - an allocation-heavy Python workload for bench/run.py.

Run with PYTHONMALLOC=malloc so that every object is a malloc: builds lists of small dicts,
dumps them to JSON text and loads them back, ROUNDS times.  About 2 s untraced at the default
size.   usage: python3 json_dicts.py [N_RECORDS] [ROUNDS]
"""
import json
import sys


def build(n, salt):
    return [
        {
            "id": i,
            "name": "item-%d-%d" % (salt, i),
            "x": (i * 7919 + salt) % 11,
            "tags": ["t%d" % (i % 13), "u%d" % (i % 7)],
            "score": i * 0.5,
            "ok": i % 3 == 0,
        }
        for i in range(n)
    ]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    total = 0
    for r in range(rounds):
        records = build(n, r)
        text = json.dumps(records)
        back = json.loads(text)
        total += sum(1 for d in back if d["x"] > 5) + len(text)
        del records, back, text
    print(total)


if __name__ == "__main__":
    main()
