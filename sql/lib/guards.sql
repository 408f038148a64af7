-- lib/guards.sql — helpers shared by neutralize.sql, anonymize.sql and anonymize.d/*.sql (included
-- with \ir). They live in pg_temp: they exist for this psql session only and leave nothing behind.
CREATE OR REPLACE FUNCTION pg_temp.odoo_has_table(t text) RETURNS boolean LANGUAGE sql STABLE AS $f$
  SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = t AND table_type = 'BASE TABLE')
$f$;
CREATE OR REPLACE FUNCTION pg_temp.odoo_has_column(t text, c text) RETURNS boolean LANGUAGE sql STABLE AS $f$
  SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = t AND column_name = c)
$f$;
-- Run `sql` (with %I placeholders for the table) only when the table and all listed columns exist.
-- Returns the number of rows it touched, or NULL when skipped.
CREATE OR REPLACE FUNCTION pg_temp.odoo_exec_if(t text, cols text[], sql text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE c text; n bigint;
BEGIN
  IF NOT pg_temp.odoo_has_table(t) THEN RETURN NULL; END IF;
  FOREACH c IN ARRAY coalesce(cols, '{}') LOOP
    IF NOT pg_temp.odoo_has_column(t, c) THEN RETURN NULL; END IF;
  END LOOP;
  EXECUTE sql;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $f$;
-- Set one ir_config_parameter (insert or update; no write when the value is already right).
CREATE OR REPLACE FUNCTION pg_temp.odoo_set_param(k text, v text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO ir_config_parameter (key, value) VALUES (k, v)
  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value WHERE ir_config_parameter.value IS DISTINCT FROM EXCLUDED.value;
END $f$;


-- Anonymization rules: column `col` of table `tbl` becomes `expr` (an SQL expression over the row's
-- own columns, usually keyed by `id`; on a jsonb column each value is replaced and the keys kept, unless
-- the expression ends with `::jsonb`, then it is the whole new value). keep_null: a NULL stays NULL. needs: other columns `expr`
-- uses; the rule is skipped when one is missing. Rules of absent tables/columns are skipped.
CREATE TEMP TABLE IF NOT EXISTS odoo_anon_rule (
  tbl text NOT NULL, col text NOT NULL, expr text NOT NULL, keep_null boolean NOT NULL DEFAULT true, needs text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (tbl, col));
CREATE OR REPLACE FUNCTION pg_temp.odoo_anon_rule(t text, c text, e text, keep_null boolean DEFAULT true, needs text[] DEFAULT '{}')
RETURNS void LANGUAGE sql AS $f$
  INSERT INTO odoo_anon_rule VALUES (t, c, e, keep_null, needs)
  ON CONFLICT (tbl, col) DO UPDATE SET expr = EXCLUDED.expr, keep_null = EXCLUDED.keep_null, needs = EXCLUDED.needs
$f$;

-- Apply every rule of table `t` in ONE update (one pass over the table, whatever the number of
-- columns). jsonb columns (translated or company-dependent fields) keep their keys, each value
-- replaced. Only rows that change are written: a row already anonymized (a second run), or one that
-- conditional rules leave as it is (technical attachments, kept logins, public channels), costs a
-- read, not a new row version and an entry in every index. Returns the rows changed, or NULL when
-- the table or all its rule columns are absent.
CREATE OR REPLACE FUNCTION pg_temp.odoo_anonymize_table(t text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE r record; v text; sets text[] := '{}'; olds text[] := '{}'; news text[] := '{}'; n bigint; need text; ok boolean;
BEGIN
  IF NOT pg_temp.odoo_has_table(t) THEN RETURN NULL; END IF;
  FOR r IN
    SELECT rule.*, format_type(a.atttypid, a.atttypmod) AS typ
      FROM odoo_anon_rule rule
      JOIN pg_attribute a ON a.attrelid = to_regclass(quote_ident(t)) AND a.attname = rule.col AND a.attnum > 0 AND NOT a.attisdropped
     WHERE rule.tbl = t ORDER BY a.attnum
  LOOP
    ok := true;
    FOREACH need IN ARRAY r.needs LOOP
      IF NOT pg_temp.odoo_has_column(t, need) THEN ok := false; END IF;
    END LOOP;
    CONTINUE WHEN NOT ok;
    IF r.typ = 'jsonb' AND r.expr ~ '::jsonb\s*$' THEN
      -- an expression that is already jsonb replaces the whole value (keys included: JSON payloads
      -- whose keys can be personal, properties)
      v := format('(%s)', r.expr);
    ELSIF r.typ = 'jsonb' THEN
      v := format($j$CASE WHEN jsonb_typeof(%1$I) = 'object'
                      THEN coalesce((SELECT jsonb_object_agg(k, to_jsonb((%2$s)::text)) FROM jsonb_object_keys(%1$I) k), '{}'::jsonb)
                      ELSE to_jsonb((%2$s)::text) END$j$, r.col, r.expr);
    ELSE
      v := format('(%s)::%s', r.expr, r.typ);
    END IF;
    IF r.keep_null THEN
      v := format('CASE WHEN %I IS NULL THEN NULL ELSE %s END', r.col, v);
    END IF;
    sets := sets || format('%I = %s', r.col, v);
    -- json (not jsonb) has no equality operator: compared as text
    olds := olds || CASE WHEN r.typ = 'json' THEN format('%I::text', r.col) ELSE format('%I', r.col) END;
    news := news || CASE WHEN r.typ = 'json' THEN format('(%s)::text', v) ELSE v END;
  END LOOP;
  IF cardinality(sets) = 0 THEN RETURN NULL; END IF;
  EXECUTE format('UPDATE %I SET %s WHERE ROW(%s) IS DISTINCT FROM ROW(%s)', t, array_to_string(sets, ', '),
                 array_to_string(olds, ', '), array_to_string(news, ', '));
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $f$;
