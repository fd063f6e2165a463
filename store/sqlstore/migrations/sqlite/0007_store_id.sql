-- The store's identity: random, made once, so that a server can tell the
-- database it was set up with from another one (an empty file, a restore
-- of another server's). Store.ID reads it.

CREATE TABLE {{prefix}}store_meta (
    meta_key   TEXT PRIMARY KEY,
    meta_value TEXT NOT NULL
);

INSERT INTO {{prefix}}store_meta (meta_key, meta_value) VALUES ('store_id', lower(hex(randomblob(16))));
