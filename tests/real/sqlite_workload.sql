-- SQLite workload for tests/run_real_programs.sh: run with and without the preloaded allocator,
-- the output must be identical. Deterministic: no random(), no dates.
PRAGMA cache_size = -20000;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, blob BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t(id, grp, name, val, blob)
SELECT x, x % 97, 'name-' || (x * 7919 % 100003) || '-' || substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26, 1 + x % 13),
       (x * 37 % 1009) / 7.0, zeroblob(x % 300)
FROM c;
CREATE INDEX t_grp ON t(grp, val);
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(grp), round(avg(val), 4), sum(length(blob)) FROM t;
SELECT grp, count(*), round(sum(val), 3), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 10;
SELECT grp, count(*) AS n FROM t WHERE val > 100 GROUP BY grp HAVING n > 300 ORDER BY n DESC, grp LIMIT 5;
SELECT name FROM t WHERE name LIKE 'name-1234%' ORDER BY name;
SELECT count(DISTINCT substr(name, -3)) FROM t;
SELECT id, val, rank() OVER (PARTITION BY grp ORDER BY val DESC, id) AS r FROM t WHERE grp = 5 ORDER BY r, id LIMIT 5;
CREATE TABLE g AS SELECT grp, group_concat(id, ',') AS ids FROM (SELECT grp, id FROM t WHERE id % 100 = 0 ORDER BY id) GROUP BY grp;
SELECT grp, length(ids), substr(ids, 1, 40) FROM g ORDER BY grp LIMIT 5;
SELECT a.grp, count(*) FROM t a JOIN g b ON a.grp = b.grp WHERE a.id % 1000 = 1 GROUP BY a.grp ORDER BY a.grp LIMIT 5;
UPDATE t SET name = upper(name), val = val * 2 WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), round(sum(val), 2), count(DISTINCT name) FROM t;
SELECT json_group_array(json_object('id', id, 'n', name)) FROM (SELECT id, name FROM t ORDER BY id LIMIT 3);
VACUUM;
SELECT count(*) FROM t WHERE name > 'name-5';
PRAGMA integrity_check;
