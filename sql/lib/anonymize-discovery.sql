-- lib/anonymize-discovery.sql — the part of anonymize.sql that reads Odoo's own metadata: which
-- columns of which installed module hold personal data (pg_temp.odoo_discover_rules), the names of the
-- people of this database (to scrub texts that are kept), and the scrubbing of kept texts.
-- Included by anonymize.sql after lib/guards.sql and lib/pii.sql.

-- Every column the run treats or leaves, for the refresh report (no values).
CREATE TEMP TABLE IF NOT EXISTS odoo_anon_column (tbl text, col text, rule text, source text, PRIMARY KEY (tbl, col)) ON COMMIT DROP;
-- Folded two-word keys of the names of this database's people (see odoo_collect_names).
CREATE TEMP TABLE IF NOT EXISTS odoo_person_name (k text PRIMARY KEY) ON COMMIT DROP;
-- Fields of ir_model_fields whose tracked values are not personal (see odoo_discover_rules).
CREATE TEMP TABLE IF NOT EXISTS odoo_plain_field (id integer PRIMARY KEY) ON COMMIT DROP;

-- A kept text with what a person would recognise removed: e-mail addresses (also written &#64; / %40),
-- international phone numbers (also with &nbsp;), checksum-valid IBANs and VAT numbers, and the names of
-- this database's people (pairs of words, whatever their accents or case). A second run changes nothing.
CREATE OR REPLACE FUNCTION pg_temp.odoo_scrub(raw text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
  x text := raw; w text[]; i integer; hit text[] := '{}'; m text[]; c text; l integer; u text;
  at CONSTANT text := '(?:@|&#0*64;|&#[xX]0*40;|&commat;|%40)';
  sp CONSTANT text := '(?:[ .()/-]|&nbsp;|&#0*160;|' || E'\u00a0' || ')';
BEGIN
  IF x IS NULL OR x = '' THEN RETURN x; END IF;
  x := regexp_replace(x, '[A-Za-z0-9._+-]+' || at || '[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}', 'someone@example.invalid', 'g');
  x := regexp_replace(x, '(\+|(?:^|[^0-9A-Za-z])00)[1-9](?:' || sp || '{0,2}[0-9]){7,14}', '+10000000000', 'g');
  IF x ~ '[0-9]{2}' THEN
    u := upper(x);
    FOR m IN SELECT regexp_matches(u, '(?:^|[^A-Z0-9])([A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30})', 'g') LOOP
      c := pg_temp.odoo_iban_at(m[1]);
      CONTINUE WHEN c IS NULL;
      FOR l IN length(c) .. length(m[1]) LOOP   -- the grouped form of the IBAN in the text
        IF replace(left(m[1], l), ' ', '') = c THEN x := regexp_replace(x, left(m[1], l), 'NL00ANON0000000000', 'i'); EXIT; END IF;
      END LOOP;
    END LOOP;
    FOR m IN SELECT regexp_matches(u, '((?:BE|DE|FR|NL)[ .-]?[0-9A-Z](?:[ .-]?[0-9B]){8,12})', 'g') LOOP
      c := regexp_replace(m[1], '[ .-]', '', 'g');
      FOREACH l IN ARRAY ARRAY[14, 13, 12, 11] LOOP
        IF length(c) >= l AND pg_temp.odoo_vat_ok(left(c, l)) THEN x := replace(x, m[1], 'VAT'); EXIT; END IF;
      END LOOP;
    END LOOP;
  END IF;
  w := pg_temp.odoo_words(x);
  FOR i IN 1 .. cardinality(w) - 1 LOOP
    IF EXISTS (SELECT 1 FROM odoo_person_name WHERE k IN (pg_temp.odoo_fold(w[i] || ' ' || w[i + 1]))) THEN
      hit := hit || w[i] || w[i + 1];
    END IF;
  END LOOP;
  FOREACH c IN ARRAY hit LOOP x := replace(x, c, 'Someone'); END LOOP;
  RETURN x;
END $f$;
-- The same on every string of a jsonb value (translations of a template or a view), keys kept.
CREATE OR REPLACE FUNCTION pg_temp.odoo_scrub_json(j jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$
BEGIN
  RETURN CASE jsonb_typeof(j)
    WHEN 'string' THEN to_jsonb(pg_temp.odoo_scrub(j #>> '{}'))
    -- keys scrubbed too (an address used as a key); two keys scrubbed alike get the row number appended
    WHEN 'object' THEN (SELECT coalesce(jsonb_object_agg(CASE WHEN s.k2 = s.k OR s.n = 1 THEN s.k2 ELSE s.k2 || '#' || s.n END, s.v), '{}'::jsonb)
                          FROM (SELECT e.k, pg_temp.odoo_scrub(e.k) AS k2, pg_temp.odoo_scrub_json(e.v) AS v,
                                       row_number() OVER (PARTITION BY pg_temp.odoo_scrub(e.k) ORDER BY e.k) AS n FROM jsonb_each(j) e(k, v)) s)
    WHEN 'array' THEN (SELECT coalesce(jsonb_agg(pg_temp.odoo_scrub_json(v) ORDER BY o), '[]'::jsonb) FROM jsonb_array_elements(j) WITH ORDINALITY e(v, o))
    ELSE j END;
END $f$;

-- Classify one stored field of a model from its name, type and relation (Odoo's metadata):
-- returns the rule kind, or NULL when the field is left as it is.
--   person-like model: it has an e-mail or phone field (partners, leads, applicants, candidates,
--   mailing contacts, registrations, survey answers, payment transactions, blacklists, ...);
--   person-related model: person-like, or it points at a person (many2one/many2many to res.partner,
--   res.users, hr.employee, hr.applicant, hr.candidate, crm.lead, mailing.contact).
CREATE OR REPLACE FUNCTION pg_temp.odoo_field_kind(f text, ttype text, person_like boolean, person_related boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE
    WHEN ttype NOT IN ('char', 'text', 'html', 'properties', 'json') THEN NULL
    WHEN f ~ '(token|uuid|_code|_hash|password|secret|_key)$' OR f IN ('lang', 'tz', 'state', 'type', 'model', 'res_model', 'url', 'key') THEN NULL
    WHEN ttype IN ('char', 'text') AND f ~ '(^|_)(email|emails|email_from|email_to|email_cc|reply_to|email_normalized)$' THEN 'email'
    WHEN ttype = 'char' AND f = 'message_id' THEN 'message_id'
    WHEN ttype = 'char' AND (f ~ '(^|_)(phone|mobile|fax)(_sanitized)?$' OR f = 'number' AND person_like) THEN 'phone'
    WHEN ttype = 'char' AND f ~ '(^|_)(acc_number|account_number|iban)$' THEN 'iban'
    WHEN ttype = 'char' AND f ~ '(^|_)vat$' THEN 'vat'
    WHEN ttype = 'char' AND (f IN ('partner_name', 'contact_name', 'common_name', 'nickname', 'custom_channel_name', 'acc_holder_name',
                                   'holder_name', 'invoice_partner_display_name', 'res_name', 'record_name', 'employee_name', 'spouse_complete_name',
                                   'emergency_contact', 'company_name', 'commercial_company_name')
                             OR f ~ '(^x_|_)(partner|contact|holder|customer|client|person|first|last|full)_?name$'
                             OR person_like AND f IN ('name', 'display_name', 'complete_name')) THEN 'name'
    WHEN ttype = 'char' AND f ~ '(^|_)(street|street2|city|zip|address|address_complete|location|videocall_location|place_of_birth)$' THEN 'address'
    WHEN ttype = 'char' AND f ~ '(^|_)(website|linkedin|linkedin_profile|twitter|facebook)$' THEN 'website'
    WHEN ttype = 'char' AND person_related AND f IN ('ref', 'client_order_ref', 'payment_ref', 'carrier_tracking_ref') THEN 'reference'
    WHEN ttype = 'char' AND person_related AND (f ~ '(_box|comment|note|notes|feedback|answer|remarks?)$' OR f IN ('name', 'origin', 'invoice_origin', 'payment_reference', 'summary', 'subject', 'description')) THEN 'scrub'
    WHEN ttype IN ('properties', 'json') AND person_related THEN 'json'
    WHEN ttype IN ('text', 'html') AND person_related THEN ttype
    WHEN ttype = 'char' AND person_like THEN 'char'
    WHEN f LIKE 'x\_%' AND (f ~ '(name|mail|phone|mobile|address|street|note|comment|iban|vat|birth|private|linkedin)') THEN CASE ttype WHEN 'char' THEN 'char' WHEN 'html' THEN 'html' WHEN 'text' THEN 'text' ELSE 'json' END
    ELSE NULL END
$f$;

-- The replacement of each kind (an expression over the row, keyed by id, as odoo_anon_rule wants).
CREATE OR REPLACE FUNCTION pg_temp.odoo_kind_expr(kind text, tbl text, f text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT CASE kind
    WHEN 'email' THEN format($e$%L || id || '@example.invalid'$e$, replace(tbl, '_', '') || CASE WHEN f ~ 'cc$' THEN '.cc' ELSE '' END)
    WHEN 'message_id' THEN format($e$'<' || %L || id || '@example.invalid>'$e$, replace(tbl, '_', ''))
    WHEN 'phone' THEN $e$'+1' || lpad(id::text, 10, '0')$e$
    WHEN 'iban' THEN 'pg_temp.odoo_fake_iban(id)'
    WHEN 'vat' THEN 'pg_temp.odoo_fake_vat(id)'
    WHEN 'name' THEN format($e$%L || id$e$, initcap(replace(CASE WHEN f IN ('name', 'display_name', 'complete_name') THEN regexp_replace(tbl, '^[a-z]+_', '') ELSE f END, '_', ' ')) || ' ')
    WHEN 'address' THEN CASE WHEN f ~ 'zip$' THEN $e$lpad((id % 100000)::text, 5, '0')$e$ WHEN f ~ 'city$|place_of_birth$' THEN $e$'Anytown'$e$
                             ELSE $e$id || ' Anonymous Street'$e$ END
    WHEN 'website' THEN format($e$'https://' || %L || id || '.example.invalid'$e$, replace(tbl, '_', ''))
    WHEN 'reference' THEN $e$'REF' || id$e$
    WHEN 'json' THEN $e$'{}'::jsonb$e$
    WHEN 'scrub' THEN format('pg_temp.odoo_scrub(%I)', f)
    WHEN 'html' THEN format($e$'<p>' || %L || id || '</p>'$e$, initcap(replace(f, '_', ' ')) || ' ')
    ELSE format($e$%L || id$e$, initcap(replace(f, '_', ' ')) || ' ') END
$f$;

-- Discover the personal columns of every installed model from ir_model_fields and add a rule for each
-- column no explicit rule covers. Also records every text-like column of the database, treated or not,
-- in odoo_anon_column (for the report), and the fields whose tracked values are not personal.
CREATE OR REPLACE FUNCTION pg_temp.odoo_discover_rules() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE r record; n bigint := 0; k text;
BEGIN
  IF pg_temp.odoo_has_table('ir_model_fields') THEN
    FOR r IN
      WITH f AS (
        SELECT mf.id, mf.model, mf.name, mf.ttype, mf.relation, replace(mf.model, '.', '_') AS tbl
          FROM ir_model_fields mf WHERE coalesce(mf.store, true)),
      person_like AS (
        SELECT DISTINCT model FROM f WHERE ttype = 'char' AND (name ~ '(^|_)(email|email_from|phone|mobile)$' OR model = 'phone.blacklist')),
      person_related AS (
        SELECT model FROM person_like
        UNION SELECT model FROM f WHERE ttype IN ('many2one', 'many2many')
          AND (relation IN ('res.partner', 'res.users', 'hr.employee', 'hr.applicant', 'hr.candidate', 'crm.lead', 'mailing.contact', 'event.registration')
               OR relation IN (SELECT model FROM person_like))
          AND name NOT IN ('create_uid', 'write_uid', 'company_id'))
      SELECT f.*, f.model IN (SELECT model FROM person_like) AS pl, f.model IN (SELECT model FROM person_related) AS pr
        FROM f
       WHERE f.model !~ '^(ir\.|base\.|bus\.|base_|res\.(lang|country|currency|groups|config)|report\.|web_|digest\.|mail\.(template|alias|activity\.type|message\.subtype|tracking\.value|message|mail)$)'
         ORDER BY f.model, f.name
    LOOP
      CONTINUE WHEN NOT pg_temp.odoo_has_column(r.tbl, r.name);
      CONTINUE WHEN EXISTS (SELECT 1 FROM odoo_anon_rule WHERE tbl = r.tbl AND col = r.name);
      k := pg_temp.odoo_field_kind(r.name, r.ttype, r.pl, r.pr);
      CONTINUE WHEN k IS NULL;
      PERFORM pg_temp.odoo_anon_rule(r.tbl, r.name, pg_temp.odoo_kind_expr(k, r.tbl, r.name));
      INSERT INTO odoo_anon_column VALUES (r.tbl, r.name, k, 'ir_model_fields') ON CONFLICT DO NOTHING;
      n := n + 1;
    END LOOP;
    -- tracked values kept: fields of a non-text type (selection, numbers, dates, booleans) and
    -- many2one to a model that is not a person (stages, teams, products)
    INSERT INTO odoo_plain_field
    SELECT id FROM ir_model_fields
     WHERE ttype IN ('selection', 'boolean', 'integer', 'float', 'monetary', 'date', 'datetime')
        OR ttype = 'many2one' AND relation NOT IN ('res.partner', 'res.users', 'hr.employee', 'hr.applicant', 'hr.candidate', 'crm.lead',
                                                 'mailing.contact', 'event.registration', 'res.partner.bank', 'mail.guest')
    ON CONFLICT DO NOTHING;
    FOREACH k IN ARRAY ARRAY['field_id', 'field'] LOOP   -- 17+ / 16
      IF pg_temp.odoo_has_column('mail_tracking_value', k) THEN
        UPDATE odoo_anon_rule SET expr = format('CASE WHEN %I IN (SELECT id FROM odoo_plain_field) THEN %I ELSE %s END', k, col, expr),
                                  needs = needs || k
         WHERE tbl = 'mail_tracking_value' AND expr NOT LIKE 'CASE WHEN%';
      END IF;
    END LOOP;
    -- binary content stored in the database for person records (vCards, scans)
    IF pg_temp.odoo_has_column('ir_attachment', 'db_datas') THEN
      PERFORM pg_temp.odoo_anon_rule('ir_attachment', 'db_datas',
        $$CASE WHEN res_model IN (SELECT model FROM ir_model_fields WHERE ttype = 'char' AND name ~ '(^|_)(email|email_from|phone|mobile)$')
                 OR res_model IN ('res.partner', 'res.users', 'hr.employee', 'res.partner.bank', 'mail.message')
               THEN convert_to('attachment ' || id, 'UTF8') ELSE db_datas END$$, true, '{res_model}');
    END IF;
  END IF;
  -- tables of custom modules made outside the ORM (x_..., unknown to ir_model): their text-like columns scrubbed
  IF pg_temp.odoo_has_table('ir_model') THEN
    FOR r IN
      SELECT c.table_name AS tbl, c.column_name AS col, c.data_type AS typ
        FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
       WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name LIKE 'x\_%'
         AND c.data_type IN ('text', 'character varying', 'jsonb', 'ARRAY')
         AND c.table_name NOT IN (SELECT replace(model, '.', '_') FROM ir_model)
    LOOP
      CONTINUE WHEN EXISTS (SELECT 1 FROM odoo_anon_rule WHERE tbl = r.tbl AND col = r.col);
      PERFORM pg_temp.odoo_anon_rule(r.tbl, r.col, CASE r.typ
        WHEN 'jsonb' THEN format('pg_temp.odoo_scrub_json(%I)::jsonb', r.col)
        WHEN 'ARRAY' THEN format('(SELECT array_agg(pg_temp.odoo_scrub(e) ORDER BY o) FROM unnest(%I::text[]) WITH ORDINALITY u(e, o))', r.col)
        ELSE format('pg_temp.odoo_scrub(%I)', r.col) END);
      INSERT INTO odoo_anon_column VALUES (r.tbl, r.col, 'scrub', 'schema (no ORM metadata)') ON CONFLICT DO NOTHING;
    END LOOP;
  END IF;
  -- the report: every rule, then every text-like column left as it is
  INSERT INTO odoo_anon_column SELECT tbl, col, 'explicit', 'anonymize.sql' FROM odoo_anon_rule
   WHERE pg_temp.odoo_has_column(tbl, col) ON CONFLICT DO NOTHING;
  INSERT INTO odoo_anon_column
  SELECT c.table_name, c.column_name, 'untouched', c.data_type
    FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
   WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
     AND c.data_type IN ('text', 'character varying', 'character', 'jsonb', 'json', 'ARRAY', 'bytea')
  ON CONFLICT DO NOTHING;
  RETURN n;
END $f$;

-- Collect the two-word keys of the names of the people (and partner companies) of this database,
-- before they are replaced: from every name-kind column that has a rule.
CREATE OR REPLACE FUNCTION pg_temp.odoo_collect_names() RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE r record; n bigint;
BEGIN
  FOR r IN SELECT tbl, col FROM odoo_anon_rule
            WHERE (col IN ('name', 'partner_name', 'contact_name', 'common_name', 'acc_holder_name', 'spouse_complete_name', 'emergency_contact', 'nickname')
                   AND tbl IN ('res_partner', 'hr_employee', 'resource_resource', 'res_partner_bank', 'mail_guest')
                OR tbl NOT IN ('res_partner', 'hr_employee', 'resource_resource', 'res_partner_bank', 'mail_guest')
                   AND (tbl, col) IN (SELECT tbl, col FROM odoo_anon_column WHERE rule = 'name'))
              AND pg_temp.odoo_has_column(tbl, col)
  LOOP
    -- set-based (odoo_name_keys, row by row, costs ~0.3 ms a name)
    EXECUTE format($q$INSERT INTO odoo_person_name
      SELECT DISTINCT v.k FROM (SELECT pg_temp.odoo_words(%1$I::text) AS w FROM %2$I WHERE %1$I IS NOT NULL) s
       CROSS JOIN LATERAL generate_series(1, cardinality(s.w) - 1) i
       CROSS JOIN LATERAL (VALUES (pg_temp.odoo_fold(s.w[i] || ' ' || s.w[i + 1])), (pg_temp.odoo_translit(s.w[i] || ' ' || s.w[i + 1]))) v(k)
       WHERE length(s.w[i]) >= 2 AND length(s.w[i + 1]) >= 2
      ON CONFLICT DO NOTHING$q$, r.col, r.tbl);
  END LOOP;
  -- the anonymized forms themselves are not names ("Partner 12" is not a person)
  DELETE FROM odoo_person_name WHERE k ~ '^(partner|company|resource|holder|contact|lead|someone|user|guest|record|channel) ';
  SELECT count(*) INTO n FROM odoo_person_name;
  RETURN n;
END $f$;
