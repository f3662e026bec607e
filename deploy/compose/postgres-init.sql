-- Runs once, when the PostgreSQL volume is first initialised (the postgres image runs every file in
-- /docker-entrypoint-initdb.d). POSTGRES_DB already made the shop database; the conversations get their own
-- database so that they can be backed up, purged or moved to another server on their own (TRACKER_STORE_URL).
CREATE DATABASE tracker;
