import sys, random
random.seed(7)
total = 0
for r in range(30):
    d = {i: str(i) * (i % 17) for i in range(20000)}
    l = [list(range(i % 50)) for i in range(20000)]
    total += sum(len(v) for v in d.values()) + sum(len(x) for x in l)
    del d, l
s = sorted(random.random() for _ in range(200000))
print(total, round(sum(s), 6))
