-- verify-secrets.sql — check a refreshed UAT database against the secret catalogue (lib/secrets.sql),
-- on its own and read-only (rolled back):
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/verify-secrets.sql
--
-- Lists every place that still holds a catalogued credential — 'table.column', 'table (rows)' or
-- 'ir_config_parameter[key]' — with the rule it breaks and a count, never a value, and then fails
-- (psql exits 3). The pipeline runs the same check through shared/adapters/secret-catalogue.ts.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
BEGIN;
\ir lib/guards.sql
\o /dev/null
\ir lib/secrets.sql
\o
CREATE TEMP TABLE odoo_secret_finding ON COMMIT DROP AS SELECT * FROM pg_temp.odoo_secret_findings();
SELECT place, rule, count FROM odoo_secret_finding ORDER BY place;
DO $fail$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM odoo_secret_finding;
  IF n > 0 THEN
    RAISE EXCEPTION 'secret check FAILED: % place(s) still hold a catalogued credential, listed above', n;
  END IF;
  RAISE NOTICE 'secret check passed';
END
$fail$;
ROLLBACK;
