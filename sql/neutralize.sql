-- neutralize.sql — make a copy of an Odoo 16/17/18 PROD database harmless to run as UAT, and usable.
--
-- What Odoo's own `odoo neutralize` does for the standard modules (each module's data/neutralize.sql),
-- written once for all three versions, plus what Odoo leaves: every credential of the secret catalogue
-- (lib/secrets.sql: OAuth tokens of mail servers, payment/delivery keys, SMTP private keys, IAP tokens,
-- portal/guest/invitation tokens, secret config parameters) is emptied or rotated. Every statement is
-- guarded (a table or column this database does not have is skipped, not an error) and idempotent (a
-- second run changes nothing; unlike Odoo's, it does not add another dummy mail server each time).
-- No personal data is touched here: that is anonymize.sql.
--
--   psql -v ON_ERROR_STOP=1 -d DB -f sql/neutralize.sql -f sql/anonymize.sql
--
-- Variables (all optional). Each one not given with -v is read from the environment variable of the
-- same setting (psql's \getenv), so the pipeline's settings reach the minimal command as they are:
--   uat_url            (UAT_URL)             web.base.url of the copy, frozen (default http://localhost:8069)
--   uat_password_hash  (UAT_PASSWORD_HASH)   Odoo pbkdf2-sha512 hash the kept logins get; any other
--                                            value is refused. Unset: the kept logins keep their password.
--   keep_logins        (REFRESH_KEEP_LOGINS) comma-separated logins that can still log in (default
--                                            'admin'). Odoo's admin user (base.user_admin) always can:
--                                            its login becomes 'admin' when that login is free. Every
--                                            other user gets no password (cannot log in). The effective
--                                            list is handed on to anonymize.sql (same psql session).
\set ON_ERROR_STOP 1
\if :{?uat_url}
\else
  \getenv uat_url UAT_URL
\endif
\if :{?uat_url}
\else
  \set uat_url ''
\endif
\if :{?uat_password_hash}
\else
  \getenv uat_password_hash UAT_PASSWORD_HASH
\endif
\if :{?uat_password_hash}
\else
  \set uat_password_hash ''
\endif
\if :{?keep_logins}
\else
  \getenv keep_logins REFRESH_KEEP_LOGINS
\endif
\if :{?keep_logins}
\else
  \set keep_logins 'admin'
\endif
SET client_min_messages = warning;
BEGIN;
-- one transaction; its commit need not wait for the WAL flush (a crash before it = a refresh to redo)
SET LOCAL synchronous_commit = off;
SET LOCAL odoo_mta.uat_url = :'uat_url';
SET LOCAL odoo_mta.uat_password_hash = :'uat_password_hash';
SET LOCAL odoo_mta.keep_logins = :'keep_logins';

\ir lib/guards.sql
\o /dev/null
\ir lib/secrets.sql
\o

CREATE TEMP TABLE IF NOT EXISTS odoo_neutralize_log (step text, rows bigint) ON COMMIT DROP;

DO $neutralize$
DECLARE
  n bigint;
  uat_url text := coalesce(nullif(current_setting('odoo_mta.uat_url'), ''), 'http://localhost:8069');
BEGIN
  IF uat_url !~ '^https?://[^\s/''"]+' THEN
    RAISE EXCEPTION 'uat_url must be an absolute http(s) URL' USING ERRCODE = '22023';
  END IF;

  -- base: outgoing mail goes nowhere. Every server is deactivated (its credentials go with the
  -- secret catalogue below); one dummy server (host 'invalid') stays active so that Odoo does not
  -- fall back on odoo.conf's SMTP.
  IF pg_temp.odoo_has_table('ir_mail_server') THEN
    UPDATE ir_mail_server SET active = false WHERE active AND smtp_host IS DISTINCT FROM 'invalid';
    GET DIAGNOSTICS n = ROW_COUNT; INSERT INTO odoo_neutralize_log VALUES ('mail servers deactivated', n);
    IF NOT EXISTS (SELECT 1 FROM ir_mail_server WHERE smtp_host = 'invalid') THEN
      IF pg_temp.odoo_has_column('ir_mail_server', 'smtp_authentication') THEN
        INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, sequence, active)
        VALUES ('neutralization - disable emails', 'invalid', 1025, 'none', 'login', 0, true);
      ELSE
        INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, sequence, active)
        VALUES ('neutralization - disable emails', 'invalid', 1025, 'none', 0, true);
      END IF;
    ELSE
      UPDATE ir_mail_server SET active = true WHERE smtp_host = 'invalid' AND NOT active;
    END IF;
  END IF;
  -- mail: templates may not pin a (real) server
  PERFORM pg_temp.odoo_exec_if('mail_template', '{mail_server_id}',
    'UPDATE mail_template SET mail_server_id = NULL WHERE mail_server_id IS NOT NULL');

  -- base: scheduled actions off, except the autovacuum job (keeps the database tidy, calls no one)
  IF pg_temp.odoo_has_table('ir_cron') THEN
    UPDATE ir_cron SET active = false
     WHERE active AND id NOT IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job');
    GET DIAGNOSTICS n = ROW_COUNT; INSERT INTO odoo_neutralize_log VALUES ('crons deactivated', n);
  END IF;

  -- fetchmail (16) / mail (17+): incoming mail servers off
  PERFORM pg_temp.odoo_exec_if('fetchmail_server', '{active}', 'UPDATE fetchmail_server SET active = false WHERE active');

  -- 17+: outgoing webhooks (their URL goes with the catalogue) and incoming webhooks (automation rules)
  PERFORM pg_temp.odoo_exec_if('base_automation', '{trigger,active}',
    $q$UPDATE base_automation SET active = false WHERE trigger = 'on_webhook' AND active$q$);

  -- payment: providers disabled unless already in test or disabled; saved payment methods archived
  n := pg_temp.odoo_exec_if('payment_provider', '{state}',
    $q$UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')$q$);
  INSERT INTO odoo_neutralize_log VALUES ('payment providers disabled', n);
  PERFORM pg_temp.odoo_exec_if('payment_acquirer', '{state}',   -- 15 and older name (harmless elsewhere)
    $q$UPDATE payment_acquirer SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')$q$);
  PERFORM pg_temp.odoo_exec_if('payment_token', '{active}', 'UPDATE payment_token SET active = false WHERE active');
  -- pos: payment terminals (Adyen, Stripe, ...) are providers too
  PERFORM pg_temp.odoo_exec_if('pos_payment_method', '{use_payment_terminal}',
    'UPDATE pos_payment_method SET use_payment_terminal = NULL WHERE use_payment_terminal IS NOT NULL');

  -- auth_oauth: no login through real identity providers
  PERFORM pg_temp.odoo_exec_if('auth_oauth_provider', '{enabled}', 'UPDATE auth_oauth_provider SET enabled = false WHERE enabled');

  -- delivery: no carrier in production mode; carriers of external providers archived
  n := pg_temp.odoo_exec_if('delivery_carrier', '{prod_environment}',
    'UPDATE delivery_carrier SET prod_environment = false WHERE prod_environment');
  INSERT INTO odoo_neutralize_log VALUES ('delivery carriers out of production mode', n);
  PERFORM pg_temp.odoo_exec_if('delivery_carrier', '{delivery_type,active}',
    $q$UPDATE delivery_carrier SET active = false WHERE active AND delivery_type NOT IN ('fixed', 'base_on_rule')$q$);

  -- google_calendar / microsoft_calendar: synchronization stopped (tokens go with the catalogue).
  -- 16: google_calendar_credentials + res_users (Microsoft); 17: google_calendar_credentials /
  -- microsoft_calendar_credentials; 18: res_users_settings
  PERFORM pg_temp.odoo_exec_if(t, ARRAY[c], format('UPDATE %I SET %I = true WHERE %I IS DISTINCT FROM true', t, c, c))
     FROM (VALUES ('google_calendar_credentials', 'synchronization_stopped'), ('microsoft_calendar_credentials', 'synchronization_stopped'),
                  ('res_users_settings', 'google_synchronization_stopped'), ('res_users_settings', 'microsoft_synchronization_stopped'),
                  ('res_users', 'microsoft_synchronization_stopped')) AS x(t, c);
  PERFORM pg_temp.odoo_exec_if(t, ARRAY[c], format('UPDATE %I SET %I = NULL WHERE %I IS NOT NULL', t, c, c))
     FROM (VALUES ('microsoft_calendar_credentials', 'last_sync_date'), ('res_users_settings', 'microsoft_last_sync_date')) AS x(t, c);

  -- account_edi_proxy_client: EDI proxy users out of production (Italy's SdI, Peppol, Nemhandel and
  -- PDP have a 'demo' mode, the others 'test'); Malaysia's and Greece's are archived instead (a demo
  -- user may exist beside the production one, and the mode is part of a unique key)
  IF pg_temp.odoo_has_column('account_edi_proxy_client_user', 'edi_mode') THEN
    IF pg_temp.odoo_has_column('account_edi_proxy_client_user', 'proxy_type') THEN
      PERFORM pg_temp.odoo_exec_if('account_edi_proxy_client_user', '{active}',
        $q$UPDATE account_edi_proxy_client_user SET active = false WHERE active AND proxy_type IN ('l10n_my_edi', 'l10n_gr_edi')$q$);
      UPDATE account_edi_proxy_client_user
         SET edi_mode = CASE WHEN proxy_type IN ('l10n_it_edi', 'peppol', 'nemhandel', 'pdp') THEN 'demo' ELSE 'test' END
       WHERE proxy_type NOT IN ('l10n_my_edi', 'l10n_gr_edi') AND edi_mode = 'prod';
    ELSE
      UPDATE account_edi_proxy_client_user SET edi_mode = 'test' WHERE edi_mode = 'prod';
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT; INSERT INTO odoo_neutralize_log VALUES ('EDI proxy users out of production', n);
  ELSIF pg_temp.odoo_has_table('account_edi_proxy_client_user') AND pg_temp.odoo_has_table('ir_config_parameter') THEN
    -- 16: the user has no edi_mode; Odoo 16 switches the whole client to demo and IAP to its sandbox
    PERFORM pg_temp.odoo_set_param('account_edi_proxy_client.demo', 'True');
    PERFORM pg_temp.odoo_set_param('iap.endpoint', 'https://iap-sandbox.odoo.com');
    INSERT INTO odoo_neutralize_log VALUES ('EDI proxy client in demo mode (16)', 1);
  END IF;
  PERFORM pg_temp.odoo_exec_if('res_company', '{l10n_my_edi_mode}', $q$UPDATE res_company SET l10n_my_edi_mode = 'test' WHERE l10n_my_edi_mode = 'prod'$q$);
  PERFORM pg_temp.odoo_exec_if('res_company', '{l10n_gr_edi_test_env}', 'UPDATE res_company SET l10n_gr_edi_test_env = true WHERE l10n_gr_edi_test_env IS DISTINCT FROM true');

  -- website: no domain (so it never answers as PROD), no CDN, robots forbid indexing
  PERFORM pg_temp.odoo_exec_if('website', '{domain}', 'UPDATE website SET domain = NULL WHERE domain IS NOT NULL');
  PERFORM pg_temp.odoo_exec_if('website', '{cdn_activated}', 'UPDATE website SET cdn_activated = false WHERE cdn_activated');
  PERFORM pg_temp.odoo_exec_if('website', '{robots_txt}',
    $q$UPDATE website SET robots_txt = E'User-agent: *\nDisallow: /' WHERE robots_txt IS DISTINCT FROM E'User-agent: *\nDisallow: /'$q$);

  -- web / website: the "neutralized database" banner and the website ribbon
  PERFORM pg_temp.odoo_exec_if('ir_ui_view', '{key,active}',
    $q$UPDATE ir_ui_view SET active = true WHERE key IN ('web.neutralize_banner', 'website.neutralize_ribbon') AND NOT active$q$);

  -- base: flag, URL, and a new identity (what `odoo db duplicate` does). The secret and uuid are
  -- regenerated once: the new uuid is remembered in 'odoo_mta.neutralized_uuid', so a second run sees
  -- it is already done. A new database.secret invalidates every session copied from PROD; the
  -- rotated tokens of the catalogue are derived from it (so it comes first).
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    PERFORM pg_temp.odoo_set_param('database.is_neutralized', 'True');
    PERFORM pg_temp.odoo_set_param('web.base.url', uat_url);
    PERFORM pg_temp.odoo_set_param('web.base.url.freeze', 'True');
    IF NOT EXISTS (SELECT 1 FROM ir_config_parameter u JOIN ir_config_parameter m ON m.key = 'odoo_mta.neutralized_uuid'
                    WHERE u.key = 'database.uuid' AND u.value = m.value) THEN
      PERFORM pg_temp.odoo_set_param('database.secret', gen_random_uuid()::text);
      PERFORM pg_temp.odoo_set_param('database.uuid', gen_random_uuid()::text);
      PERFORM pg_temp.odoo_set_param('database.create_date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'));
      PERFORM pg_temp.odoo_set_param('odoo_mta.neutralized_uuid', (SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'));
      INSERT INTO odoo_neutralize_log VALUES ('database.secret and database.uuid regenerated', 1);
    END IF;
  END IF;

  -- every credential of the secret catalogue (lib/secrets.sql): emptied, rotated or deleted
  INSERT INTO odoo_neutralize_log SELECT 'secrets cleared: ' || place, rows FROM pg_temp.odoo_secret_apply() WHERE rows > 0;
END
$neutralize$;

-- UAT access: admin and the kept logins can log in with the configured password; nobody else can.
DO $access$
DECLARE
  hash text := current_setting('odoo_mta.uat_password_hash');
  keep text[];
  admin_id int;
  n bigint;
BEGIN
  IF hash <> '' AND hash !~ '^\$pbkdf2-sha512\$[0-9]{1,7}\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+$' THEN
    -- (the value itself is never repeated: it is a secret)
    RAISE EXCEPTION 'uat_password_hash is not an Odoo password hash ($pbkdf2-sha512$<rounds>$<salt>$<hash>)' USING ERRCODE = '22023';
  END IF;
  SELECT coalesce(array_agg(DISTINCT btrim(l)) FILTER (WHERE btrim(l) <> ''), '{}') INTO keep
    FROM unnest(string_to_array(current_setting('odoo_mta.keep_logins'), ',')) l;
  IF NOT pg_temp.odoo_has_column('res_users', 'password') THEN
    PERFORM set_config('odoo_mta.keep_logins_effective', array_to_string(keep, ','), true);
    RETURN;
  END IF;
  admin_id := coalesce((SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin' AND model = 'res.users' LIMIT 1), 2);
  -- the admin's login becomes 'admin' (PROD's is often a person's address) when that login is free
  UPDATE res_users SET login = 'admin'
   WHERE id = admin_id AND login <> 'admin' AND NOT (login = ANY (keep))
     AND NOT EXISTS (SELECT 1 FROM res_users o WHERE o.login = 'admin');
  keep := keep || ARRAY(SELECT login FROM res_users WHERE id = admin_id)::text[];
  UPDATE res_users SET active = true WHERE login = ANY (keep) AND NOT active;
  IF hash <> '' THEN
    UPDATE res_users SET password = hash WHERE login = ANY (keep) AND password IS DISTINCT FROM hash;
  END IF;
  UPDATE res_users SET password = NULL WHERE NOT (login = ANY (keep)) AND login NOT LIKE '\_\_%' AND password IS NOT NULL;
  GET DIAGNOSTICS n = ROW_COUNT; INSERT INTO odoo_neutralize_log VALUES ('passwords removed (users that cannot log in)', n);
  PERFORM set_config('odoo_mta.keep_logins_effective', (SELECT string_agg(DISTINCT k, ',') FROM unnest(keep) k), true);
END
$access$;

-- hand the effective keep list on to anonymize.sql (it runs next, in the same psql session)
SELECT current_setting('odoo_mta.keep_logins_effective') AS keep_logins \gset

SELECT step, rows FROM odoo_neutralize_log WHERE rows IS NOT NULL;
COMMIT;
