-- neutralize.sql — make a copy of an Odoo 16/17/18 PROD database harmless to run as UAT.
--
-- What Odoo's own `odoo neutralize` does for the standard modules, written once for all three versions:
-- every statement is guarded (a table or column this database does not have is skipped, not an
-- error) and idempotent (a second run changes nothing; unlike Odoo's, it does not add another dummy
-- mail server each time). No personal data is touched here: that is anonymize.sql.
--
--   psql -v ON_ERROR_STOP=1 -d DB [-v uat_url=https://uat.example.com] -f sql/neutralize.sql
--
-- Variables (all optional):
--   uat_url   web.base.url of the copy (default http://localhost:8069)
\set ON_ERROR_STOP 1
\if :{?uat_url}
\else
  \set uat_url 'http://localhost:8069'
\endif
SET client_min_messages = warning;
BEGIN;
-- one transaction; its commit need not wait for the WAL flush (a crash before it = a refresh to redo)
SET LOCAL synchronous_commit = off;
SET LOCAL odoo_mta.uat_url = :'uat_url';

\ir lib/guards.sql

CREATE TEMP TABLE IF NOT EXISTS odoo_neutralize_log (step text, rows bigint) ON COMMIT DROP;

DO $neutralize$
DECLARE
  n bigint;
  uat_url text := current_setting('odoo_mta.uat_url');
BEGIN
  -- base: outgoing mail goes nowhere. Every server is deactivated and its credentials dropped; one
  -- dummy server (host 'invalid') stays active so that Odoo does not fall back on odoo.conf's SMTP.
  IF pg_temp.odoo_has_table('ir_mail_server') THEN
    UPDATE ir_mail_server SET active = false WHERE active AND smtp_host IS DISTINCT FROM 'invalid';
    GET DIAGNOSTICS n = ROW_COUNT; INSERT INTO odoo_neutralize_log VALUES ('mail servers deactivated', n);
    PERFORM pg_temp.odoo_exec_if('ir_mail_server', '{smtp_user,smtp_pass}',
      $q$UPDATE ir_mail_server SET smtp_user = NULL, smtp_pass = NULL WHERE smtp_user IS NOT NULL OR smtp_pass IS NOT NULL$q$);
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

  -- mail (fetchmail): incoming mail servers off, credentials dropped
  PERFORM pg_temp.odoo_exec_if('fetchmail_server', '{active}', 'UPDATE fetchmail_server SET active = false WHERE active');
  PERFORM pg_temp.odoo_exec_if('fetchmail_server', '{password,user}', 'UPDATE fetchmail_server SET password = NULL, "user" = NULL WHERE password IS NOT NULL OR "user" IS NOT NULL');

  -- 17+: outgoing webhooks (server actions) and incoming webhooks (automation rules)
  PERFORM pg_temp.odoo_exec_if('ir_act_server', '{state,webhook_url}',
    $q$UPDATE ir_act_server SET webhook_url = NULL WHERE state = 'webhook' AND webhook_url IS NOT NULL$q$);
  PERFORM pg_temp.odoo_exec_if('base_automation', '{trigger,active}',
    $q$UPDATE base_automation SET active = false WHERE trigger = 'on_webhook' AND active$q$);

  -- mail 17+: web push keys (notifications to real browsers)
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    DELETE FROM ir_config_parameter WHERE key IN ('mail.web_push_vapid_private_key', 'mail.web_push_vapid_public_key');
  END IF;
  PERFORM pg_temp.odoo_exec_if('mail_partner_device', NULL, 'DELETE FROM mail_partner_device');

  -- payment: providers disabled unless already in test or disabled
  n := pg_temp.odoo_exec_if('payment_provider', '{state}',
    $q$UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')$q$);
  INSERT INTO odoo_neutralize_log VALUES ('payment providers disabled', n);
  -- 15 and older name (harmless elsewhere)
  PERFORM pg_temp.odoo_exec_if('payment_acquirer', '{state}',
    $q$UPDATE payment_acquirer SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')$q$);

  -- auth_oauth: no login through real identity providers
  PERFORM pg_temp.odoo_exec_if('auth_oauth_provider', '{enabled}', 'UPDATE auth_oauth_provider SET enabled = false WHERE enabled');

  -- iap: tokens disabled (suffix '+disabled', as Odoo does); idempotent
  PERFORM pg_temp.odoo_exec_if('iap_account', '{account_token}',
    $q$UPDATE iap_account SET account_token = account_token || '+disabled' WHERE account_token NOT LIKE '%+disabled'$q$);

  -- delivery: carriers in test mode
  PERFORM pg_temp.odoo_exec_if('delivery_carrier', '{prod_environment}',
    'UPDATE delivery_carrier SET prod_environment = false WHERE prod_environment');

  -- google_calendar / microsoft_calendar: sync tokens cleared (16+: res_users_settings; older: res_users)
  PERFORM pg_temp.odoo_exec_if(t, ARRAY[c], format('UPDATE %I SET %I = NULL WHERE %I IS NOT NULL', t, c, c))
     FROM unnest(ARRAY['res_users_settings', 'res_users']) t,
          unnest(ARRAY['google_calendar_rtoken', 'google_calendar_token', 'google_calendar_token_validity', 'google_calendar_sync_token',
                       'google_calendar_cal_id', 'microsoft_calendar_rtoken', 'microsoft_calendar_token',
                       'microsoft_calendar_token_validity', 'microsoft_calendar_sync_token']) c;

  -- website: no domain (so it never answers as PROD), robots forbid indexing
  PERFORM pg_temp.odoo_exec_if('website', '{domain}', 'UPDATE website SET domain = NULL WHERE domain IS NOT NULL');
  PERFORM pg_temp.odoo_exec_if('website', '{robots_txt}',
    $q$UPDATE website SET robots_txt = E'User-agent: *\nDisallow: /' WHERE robots_txt IS DISTINCT FROM E'User-agent: *\nDisallow: /'$q$);

  -- web: the "neutralized database" banner
  PERFORM pg_temp.odoo_exec_if('ir_ui_view', '{key,active}',
    $q$UPDATE ir_ui_view SET active = true WHERE key = 'web.neutralize_banner' AND NOT active$q$);

  -- base: flag, URL, and a new identity (what `odoo db duplicate` does). The secret and uuid are
  -- regenerated once: the new uuid is remembered in 'odoo_mta.neutralized_uuid', so a second run sees
  -- it is already done. A new database.secret invalidates every session copied from PROD.
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    PERFORM pg_temp.odoo_set_param('database.is_neutralized', 'True');
    PERFORM pg_temp.odoo_set_param('web.base.url', uat_url);
    PERFORM pg_temp.odoo_set_param('web.base.url.freeze', 'True');
    IF NOT EXISTS (SELECT 1 FROM ir_config_parameter u JOIN ir_config_parameter m ON m.key = 'odoo_mta.neutralized_uuid'
                    WHERE u.key = 'database.uuid' AND u.value = m.value) THEN
      PERFORM pg_temp.odoo_set_param('database.secret', md5(random()::text || clock_timestamp()::text)::uuid::text);
      PERFORM pg_temp.odoo_set_param('database.uuid', md5(random()::text || clock_timestamp()::text)::uuid::text);
      PERFORM pg_temp.odoo_set_param('database.create_date', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'));
      PERFORM pg_temp.odoo_set_param('odoo_mta.neutralized_uuid', (SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'));
      INSERT INTO odoo_neutralize_log VALUES ('database.secret and database.uuid regenerated', 1);
    END IF;
  END IF;
END
$neutralize$;

SELECT step, rows FROM odoo_neutralize_log WHERE rows IS NOT NULL;
COMMIT;
