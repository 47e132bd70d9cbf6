-- Score figures of whole UTC days, so a dashboard over months reads a few
-- thousand rows, not every answer. Kept by the intake in the transaction
-- that stores the answers (scores.rs ROLL_UP): one row per day, place
-- (store, region, country) and value of one dimension (`dimension` ''
-- for the place alone), with the number of answers per score value; the
-- classes (promoters, high effort…) are the core's, applied when read.
-- Score tables read the whole days here and the partial days at the ends
-- of a period from feedback_events.
CREATE TABLE score_days (
    day       date NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('', 'segment', 'product_line', 'touchpoint', 'channel', 'source')),
    value     text,
    store_id  text,
    region    text,
    country   text,
    responses bigint NOT NULL,
    nps_0 bigint NOT NULL DEFAULT 0,
    nps_1 bigint NOT NULL DEFAULT 0,
    nps_2 bigint NOT NULL DEFAULT 0,
    nps_3 bigint NOT NULL DEFAULT 0,
    nps_4 bigint NOT NULL DEFAULT 0,
    nps_5 bigint NOT NULL DEFAULT 0,
    nps_6 bigint NOT NULL DEFAULT 0,
    nps_7 bigint NOT NULL DEFAULT 0,
    nps_8 bigint NOT NULL DEFAULT 0,
    nps_9 bigint NOT NULL DEFAULT 0,
    nps_10 bigint NOT NULL DEFAULT 0,
    csat_1 bigint NOT NULL DEFAULT 0,
    csat_2 bigint NOT NULL DEFAULT 0,
    csat_3 bigint NOT NULL DEFAULT 0,
    csat_4 bigint NOT NULL DEFAULT 0,
    csat_5 bigint NOT NULL DEFAULT 0,
    ces_1 bigint NOT NULL DEFAULT 0,
    ces_2 bigint NOT NULL DEFAULT 0,
    ces_3 bigint NOT NULL DEFAULT 0,
    ces_4 bigint NOT NULL DEFAULT 0,
    ces_5 bigint NOT NULL DEFAULT 0,
    ces_6 bigint NOT NULL DEFAULT 0,
    ces_7 bigint NOT NULL DEFAULT 0,
    CONSTRAINT score_days_key UNIQUE NULLS NOT DISTINCT (day, dimension, store_id, region, country, value)
);

-- The answers stored before.
INSERT INTO score_days (day, dimension, value, store_id, region, country, responses,
                        nps_0, nps_1, nps_2, nps_3, nps_4, nps_5, nps_6, nps_7, nps_8, nps_9, nps_10, csat_1, csat_2, csat_3, csat_4, csat_5, ces_1, ces_2, ces_3, ces_4, ces_5, ces_6, ces_7)
SELECT day, dimension, value, store_id, region, country, count(*),
       count(*) FILTER (WHERE nps = 0),
       count(*) FILTER (WHERE nps = 1),
       count(*) FILTER (WHERE nps = 2),
       count(*) FILTER (WHERE nps = 3),
       count(*) FILTER (WHERE nps = 4),
       count(*) FILTER (WHERE nps = 5),
       count(*) FILTER (WHERE nps = 6),
       count(*) FILTER (WHERE nps = 7),
       count(*) FILTER (WHERE nps = 8),
       count(*) FILTER (WHERE nps = 9),
       count(*) FILTER (WHERE nps = 10),
       count(*) FILTER (WHERE csat = 1),
       count(*) FILTER (WHERE csat = 2),
       count(*) FILTER (WHERE csat = 3),
       count(*) FILTER (WHERE csat = 4),
       count(*) FILTER (WHERE csat = 5),
       count(*) FILTER (WHERE ces = 1),
       count(*) FILTER (WHERE ces = 2),
       count(*) FILTER (WHERE ces = 3),
       count(*) FILTER (WHERE ces = 4),
       count(*) FILTER (WHERE ces = 5),
       count(*) FILTER (WHERE ces = 6),
       count(*) FILTER (WHERE ces = 7)
FROM (SELECT (f.occurred_at AT TIME ZONE 'UTC')::date AS day, f.store_id, f.region, f.country,
             f.nps, f.csat, f.ces, d.dimension, d.value
      FROM feedback_events f
      CROSS JOIN LATERAL (VALUES ('', NULL), ('segment', f.segment), ('product_line', f.product_line),
                                 ('touchpoint', f.touchpoint), ('channel', f.channel), ('source', f.source))
                 AS d (dimension, value)) AS answers
GROUP BY day, dimension, value, store_id, region, country;
