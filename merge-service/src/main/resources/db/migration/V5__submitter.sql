-- Who submitted a job: the name of the token the submission carried (never the token), and its id.
ALTER TABLE merge_job ADD COLUMN submitted_by text NOT NULL DEFAULT '';
ALTER TABLE merge_job ADD COLUMN submitter_token text NOT NULL DEFAULT '';
