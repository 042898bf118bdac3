"""The scratch PostgreSQL database at the migrations' head for each `engine` test, cheaply.

Running every migration costs a test ~0.15 s and copying a template database more (it writes the
whole database to the WAL); emptying the tables costs ~0.04 s. So the schema is built once and
then, before each test that wants it at head, the tables are truncated, but only when the schema
is exactly the one the migrations built: a fingerprint of the public schema (tables, columns,
defaults, constraints, indexes, views, functions, triggers, sequences and the Alembic revision) is
taken after the upgrade and compared each time. Anything else (a test that emptied the database,
downgraded or altered it) gets the old path: drop the schema and upgrade.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from poller import storage

FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
    SELECT concat_ws(' ', 'col', c.relname, c.relkind::text, c.relpersistence::text,
                     array_to_string(c.reloptions, ','), a.attname,
                     format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
                     pg_get_expr(d.adbin, d.adrelid)) AS item
      FROM pg_class c
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'con', conrelid::regclass::text, conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'idx', indexname, indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT concat_ws(' ', 'view', c.relname, pg_get_viewdef(c.oid))
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
    UNION ALL
    SELECT concat_ws(' ', 'fn', p.oid::regprocedure::text, p.prosrc)
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT concat_ws(' ', 'trg', t.tgenabled::text, pg_get_triggerdef(t.oid))
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT concat_ws(' ', 'typ', t.typname) FROM pg_type t
     WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c')
       AND t.typrelid = 0
) AS items
"""

TABLES = """
SELECT quote_ident(tablename) FROM pg_tables
 WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY tablename
"""

SEQUENCES = "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"


class PostgresHead:
    """Brings the scratch database to an empty head schema: truncate when it is intact."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fingerprint: str | None = None
        self.revision: str | None = None

    def prepare(self) -> None:
        """Leave the scratch database at head with every table empty."""
        engine = storage.make_engine(self.url)
        try:
            with engine.begin() as connection:
                if self.fingerprint is not None and self._intact(connection):
                    tables = connection.execute(text(TABLES)).scalars().all()
                    connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                    for sequence in connection.execute(text(SEQUENCES)).scalars():
                        connection.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
                    return
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            storage.upgrade_database(engine)
            with engine.connect() as connection:
                self.fingerprint, self.revision = self._state(connection)
        finally:
            engine.dispose()

    def _intact(self, connection: Connection) -> bool:
        return self._state(connection) == (self.fingerprint, self.revision)

    @staticmethod
    def _state(connection: Connection) -> tuple[str, str | None]:
        fingerprint = connection.execute(text(FINGERPRINT)).scalar_one()
        has_version = connection.execute(text("SELECT to_regclass('public.alembic_version')")).scalar()
        if has_version is None:
            return fingerprint, None
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        return fingerprint, ",".join(sorted(versions))
