CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 50000)
INSERT INTO t SELECT x, printf('name-%d-%s', x, hex(randomblob(8) IS NULL)), x * 0.5 FROM c;
CREATE INDEX ti ON t(name);
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT name FROM t WHERE id % 9973 = 0 ORDER BY name;
DELETE FROM t WHERE id % 3 = 0;
SELECT count(*), avg(v) FROM t;
