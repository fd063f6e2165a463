-- How much of a group's history a new member reads: 0 from her joining
-- on (im.HistoryFromJoin), 1 all of it (im.HistoryFull). Groups created
-- before take 0, which changes nothing for their members of today (their
-- join_seq, 0005, is 0) and hides the past from those who join later. One
-- statement, so that it runs once or not at all.

ALTER TABLE {{prefix}}chat_groups ADD COLUMN history INTEGER NOT NULL DEFAULT 0;
