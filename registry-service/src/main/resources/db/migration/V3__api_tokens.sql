-- API tokens: bearer tokens for every REST call. Only a SHA-256 of the token is stored; the token itself is shown
-- once, when it is created. Scopes: read, write, promote, submit, admin. Namespaces: the models the token may
-- touch ('*', 'team/*' or 'team/model'). Aliases: the aliases a promote token may move or delete (empty: any).
CREATE TABLE api_token (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    secret_sha256 bytea NOT NULL,
    scopes        text[] NOT NULL,
    namespaces    text[] NOT NULL,
    aliases       text[] NOT NULL DEFAULT '{}',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
