-- A job may refuse recipe parameters its method does not take (by default they are ignored and noted).
ALTER TABLE merge_job ADD COLUMN strict boolean NOT NULL DEFAULT false;
