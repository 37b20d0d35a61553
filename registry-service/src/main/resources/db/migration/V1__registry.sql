-- Models, their immutable versions, lineage between versions, aliases with their history, and index tasks.

CREATE TABLE model (
    id           BIGSERIAL PRIMARY KEY,
    namespace    TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    description  TEXT        NOT NULL DEFAULT '',
    tags         JSONB       NOT NULL DEFAULT '{}',
    -- The number the next version gets. Taken with UPDATE ... RETURNING in the registering transaction, so the
    -- row lock orders concurrent registrations and a rolled-back one gives its number back: no gaps, no reuse.
    next_version INTEGER     NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (namespace, name)
);
CREATE INDEX model_tags ON model USING GIN (tags);

CREATE TABLE model_version (
    id             BIGSERIAL PRIMARY KEY,
    model_id       BIGINT      NOT NULL REFERENCES model (id),
    version        INTEGER     NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('PENDING', 'READY', 'FAILED')),
    format         TEXT        NOT NULL CHECK (format IN ('checkpoint', 'peft_adapter', 'delta', 'fisher')),
    storage_uri    TEXT        NOT NULL,
    -- sha256 of the sorted sha256s of the version's files: the same content registers once per model.
    content_digest TEXT        NOT NULL,
    summary        JSONB       NOT NULL,
    recipe         TEXT,
    parameters     JSONB       NOT NULL DEFAULT '{}',
    metrics        JSONB       NOT NULL DEFAULT '{}',
    tags           JSONB       NOT NULL DEFAULT '{}',
    description    TEXT        NOT NULL DEFAULT '',
    created_by     TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (model_id, version),
    UNIQUE (model_id, content_digest)
);

CREATE TABLE version_file (
    version_id BIGINT NOT NULL REFERENCES model_version (id),
    path       TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    sha256     TEXT   NOT NULL,
    crc32c     TEXT   NOT NULL,
    PRIMARY KEY (version_id, path)
);

CREATE TABLE version_parent (
    child_id  BIGINT NOT NULL REFERENCES model_version (id),
    parent_id BIGINT NOT NULL REFERENCES model_version (id),
    relation  TEXT   NOT NULL CHECK (relation IN ('finetune', 'merge', 'adapter', 'delta', 'fisher_of')),
    PRIMARY KEY (child_id, parent_id, relation)
);
CREATE INDEX version_parent_parent ON version_parent (parent_id);

-- A READY version is immutable: the database itself refuses to change or delete it, or its files and parents.
CREATE FUNCTION refuse_ready_version_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'READY' THEN
        RAISE EXCEPTION 'version % is READY and immutable', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER model_version_immutable BEFORE UPDATE OR DELETE ON model_version
    FOR EACH ROW EXECUTE FUNCTION refuse_ready_version_change();

CREATE FUNCTION refuse_ready_version_part_change() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM model_version
               WHERE status = 'READY' AND id = (CASE WHEN TG_TABLE_NAME = 'version_file' THEN OLD.version_id ELSE OLD.child_id END)) THEN
        RAISE EXCEPTION '% of a READY version cannot change', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER version_file_immutable BEFORE UPDATE OR DELETE ON version_file
    FOR EACH ROW EXECUTE FUNCTION refuse_ready_version_part_change();
CREATE TRIGGER version_parent_immutable BEFORE UPDATE OR DELETE ON version_parent
    FOR EACH ROW EXECUTE FUNCTION refuse_ready_version_part_change();

CREATE TABLE alias (
    model_id   BIGINT      NOT NULL REFERENCES model (id),
    name       TEXT        NOT NULL,
    version_id BIGINT      NOT NULL REFERENCES model_version (id),
    PRIMARY KEY (model_id, name)
);

-- Every move of an alias: from NULL when it was created, to NULL when it was deleted.
CREATE TABLE alias_move (
    id           BIGSERIAL PRIMARY KEY,
    model_id     BIGINT      NOT NULL REFERENCES model (id),
    alias        TEXT        NOT NULL,
    from_version INTEGER,
    to_version   INTEGER,
    moved_by     TEXT        NOT NULL,
    moved_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alias_move_alias ON alias_move (model_id, alias, id);

CREATE TABLE index_task (
    id          UUID PRIMARY KEY,
    uri         TEXT        NOT NULL,
    namespace   TEXT        NOT NULL,
    state       TEXT        NOT NULL CHECK (state IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    report      JSONB       NOT NULL,
    error       TEXT,
    created_by  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
