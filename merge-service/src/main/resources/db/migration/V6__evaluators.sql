-- Evaluators that searches (greedy_soup, evolve) score candidates with, and the scores they gave.
CREATE TABLE evaluator (
    name text NOT NULL,
    version text NOT NULL,
    url text NOT NULL,
    secret text NOT NULL,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- A score by (evaluator name@version, content digest): a candidate with the same content is not sent again.
CREATE TABLE evaluation_score (
    evaluator text NOT NULL,
    content_digest text NOT NULL,
    score double precision NOT NULL,
    metrics jsonb NOT NULL,
    scored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (evaluator, content_digest)
);
