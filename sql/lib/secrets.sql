-- lib/secrets.sql — THE secret catalogue: every credential column, secret-bearing config key and
-- credential table of Odoo 16/17/18 that a refreshed UAT must not keep, and the two functions that
-- apply it (neutralize.sql) and check it (verify-secrets.sql, shared/adapters/secret-catalogue.ts).
-- Plain SQL (no psql meta-command): a client may run this file as it is, in its own transaction,
-- and then call pg_temp.odoo_secret_findings(). Everything lives in pg_temp (this session only).
--
-- Shape of one catalogue row (temp table odoo_secret_catalogue):
--   kind    'column'    tbl.col, exact names                      (a credential column)
--           'column_re' tbl and col are regexes (case-insensitive) matched against information_schema:
--                       every text-like/bytea column of a matching table whose name matches, custom
--                       modules included (the safety net for fields this list does not name)
--           'param'     col = an ir_config_parameter key, exact   (tbl = 'ir_config_parameter')
--           'param_re'  col = a regex on ir_config_parameter keys (case-insensitive)
--           'rows'      tbl = a table whose rows are all credentials (devices, API keys): emptied
--   rule    'empty'     column: NULL (or '' / '{}' when the column is NOT NULL); param: row deleted
--           'rotate'    column: replaced by a new value derived from the NEW database.secret, the
--                       table, column and row id (unguessable, stable on a second run, unique), for
--                       tokens Odoo needs to be present (portal/guest/invitation links): PROD's value
--                       is gone, UAT's links work
--           'delete'    rows: every row deleted
--           'keep'      an explicit exception to a regex row (not a secret, or handled elsewhere)
--   module  the Odoo module that declares it; note: why / which versions
-- An explicit 'column' row wins over a 'column_re' row for the same column; 'keep' wins over all.
CREATE TEMP TABLE IF NOT EXISTS odoo_secret_catalogue (
  kind text NOT NULL CHECK (kind IN ('column', 'column_re', 'param', 'param_re', 'rows')),
  tbl text NOT NULL,
  col text NOT NULL DEFAULT '',
  rule text NOT NULL CHECK (rule IN ('empty', 'rotate', 'delete', 'keep')),
  module text NOT NULL,
  note text NOT NULL DEFAULT '');
TRUNCATE odoo_secret_catalogue;

-- 1. Credential columns, by module (real Odoo 16–18 column names) --------------------------------
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note)
SELECT 'column', x.t, c, 'empty', x.m, x.n FROM (VALUES
  -- outgoing / incoming mail
  ('ir_mail_server', ARRAY['smtp_user', 'smtp_pass', 'smtp_ssl_certificate', 'smtp_ssl_private_key'], 'base', 'SMTP login, password, client certificate and its private key (bytea)'),
  ('ir_mail_server', ARRAY['google_gmail_authorization_code', 'google_gmail_refresh_token', 'google_gmail_access_token'], 'google_gmail', 'Gmail OAuth tokens (Odoo leaves them)'),
  ('ir_mail_server', ARRAY['microsoft_outlook_refresh_token', 'microsoft_outlook_access_token'], 'microsoft_outlook', 'Outlook OAuth tokens (Odoo leaves them)'),
  ('fetchmail_server', ARRAY['user', 'password'], 'fetchmail (16) / mail (17+)', 'IMAP/POP login'),
  ('fetchmail_server', ARRAY['google_gmail_authorization_code', 'google_gmail_refresh_token', 'google_gmail_access_token'], 'google_gmail', 'Gmail OAuth tokens (Odoo leaves them)'),
  ('fetchmail_server', ARRAY['microsoft_outlook_refresh_token', 'microsoft_outlook_access_token'], 'microsoft_outlook', 'Outlook OAuth tokens (Odoo leaves them)'),
  ('mail_ice_server', ARRAY['username', 'credential'], 'mail', 'TURN server credentials of Discuss calls'),
  -- users
  ('res_users', ARRAY['totp_secret'], 'auth_totp', '2FA seed'),
  ('res_users', ARRAY['oauth_access_token'], 'auth_oauth', 'token of the identity provider'),
  ('res_partner', ARRAY['signup_token'], 'auth_signup', '16/17: password-reset / invitation token'),
  -- calendar sync: 16 and 17 keep Google tokens in google_calendar_credentials; the Microsoft sync
  -- state is on res_users in 16, in microsoft_calendar_credentials in 17; 18 keeps both on
  -- res_users_settings; Microsoft tokens stay on res_users (microsoft_account)
  ('google_calendar_credentials', ARRAY['calendar_rtoken', 'calendar_token', 'calendar_sync_token', 'calendar_cal_id'], 'google_calendar', '16–17'),
  ('res_users_settings', ARRAY['google_calendar_rtoken', 'google_calendar_token', 'google_calendar_sync_token', 'google_calendar_cal_id'], 'google_calendar', '18'),
  ('res_users', ARRAY['google_calendar_rtoken', 'google_calendar_token', 'google_calendar_sync_token', 'google_calendar_cal_id'], 'google_calendar', 'before 15'),
  ('microsoft_calendar_credentials', ARRAY['calendar_sync_token'], 'microsoft_calendar', '17'),
  ('res_users_settings', ARRAY['microsoft_calendar_sync_token'], 'microsoft_calendar', '18'),
  ('res_users', ARRAY['microsoft_calendar_rtoken', 'microsoft_calendar_token', 'microsoft_calendar_sync_token'], 'microsoft_account', '16–18'),
  -- IAP: emptied (Odoo only suffixes '+disabled', which leaves the token readable); Odoo creates a
  -- new, empty account token when a UAT user calls a service
  ('iap_account', ARRAY['account_token'], 'iap', 'token of the paid IAP account'),
  -- EDI proxy (account_edi_proxy_client): the credentials of PROD's registration on Odoo's proxy
  ('account_edi_proxy_client_user', ARRAY['refresh_token', 'private_key'], 'account_edi_proxy_client', '16: private_key is bytea; 17+: private_key_id (a certificate)'),
  -- webhooks (17+): the target URL of outgoing webhooks
  ('ir_act_server', ARRAY['webhook_url'], 'base', '17+'),
  -- payment providers: every provider module's credential fields
  ('payment_provider', ARRAY['stripe_secret_key', 'stripe_publishable_key', 'stripe_webhook_secret'], 'payment_stripe', ''),
  ('payment_provider', ARRAY['adyen_merchant_account', 'adyen_api_key', 'adyen_client_key', 'adyen_hmac_key', 'adyen_checkout_api_url', 'adyen_recurring_api_url'], 'payment_adyen', ''),
  ('payment_provider', ARRAY['paypal_email_account', 'paypal_seller_account', 'paypal_pdt_token', 'paypal_client_id', 'paypal_client_secret', 'paypal_access_token', 'paypal_webhook_id'], 'payment_paypal', '16: email/seller/PDT; 18: REST client'),
  ('payment_provider', ARRAY['authorize_login', 'authorize_transaction_key', 'authorize_signature_key', 'authorize_client_key'], 'payment_authorize', ''),
  ('payment_provider', ARRAY['buckaroo_website_key', 'buckaroo_secret_key'], 'payment_buckaroo', ''),
  ('payment_provider', ARRAY['mollie_api_key'], 'payment_mollie', ''),
  ('payment_provider', ARRAY['ogone_pspid', 'ogone_userid', 'ogone_password', 'ogone_shakey_in', 'ogone_shakey_out'], 'payment_ogone', '16'),
  ('payment_provider', ARRAY['sips_merchant_id', 'sips_secret'], 'payment_sips', ''),
  ('payment_provider', ARRAY['alipay_merchant_partner_id', 'alipay_md5_signature_key', 'alipay_seller_email'], 'payment_alipay', '16'),
  ('payment_provider', ARRAY['payulatam_merchant_id', 'payulatam_account_id', 'payulatam_api_key'], 'payment_payulatam', '16'),
  ('payment_provider', ARRAY['payumoney_merchant_key', 'payumoney_merchant_salt'], 'payment_payumoney', '16'),
  ('payment_provider', ARRAY['flutterwave_public_key', 'flutterwave_secret_key', 'flutterwave_webhook_secret'], 'payment_flutterwave', ''),
  ('payment_provider', ARRAY['mercado_pago_access_token'], 'payment_mercado_pago', ''),
  ('payment_provider', ARRAY['razorpay_key_id', 'razorpay_key_secret', 'razorpay_webhook_secret', 'razorpay_account_id', 'razorpay_refresh_token', 'razorpay_public_token', 'razorpay_access_token'], 'payment_razorpay', '18: OAuth'),
  ('payment_provider', ARRAY['asiapay_merchant_id', 'asiapay_secure_hash_secret'], 'payment_asiapay', ''),
  ('payment_provider', ARRAY['xendit_public_key', 'xendit_secret_key', 'xendit_webhook_token'], 'payment_xendit', '17+'),
  ('payment_provider', ARRAY['aps_merchant_identifier', 'aps_access_code', 'aps_sha_request', 'aps_sha_response'], 'payment_aps', '17+'),
  ('payment_provider', ARRAY['worldline_pspid', 'worldline_api_key', 'worldline_api_secret', 'worldline_webhook_key', 'worldline_webhook_secret'], 'payment_worldline', '18'),
  ('payment_provider', ARRAY['nuvei_merchant_identifier', 'nuvei_site_identifier', 'nuvei_secret_key'], 'payment_nuvei', '18'),
  -- saved cards/mandates: the provider's reference is what charges the customer
  ('payment_token', ARRAY['provider_ref'], 'payment', 'the provider-side reference of a saved payment method'),
  ('payment_token', ARRAY['stripe_payment_method', 'stripe_mandate'], 'payment_stripe', 'Stripe payment method / mandate of a saved card'),
  -- delivery carriers (the connector modules' fields)
  ('delivery_carrier', ARRAY['dhl_SiteID', 'dhl_password', 'dhl_account_number', 'dhl_api_key', 'dhl_api_secret'], 'delivery_dhl / delivery_dhl_rest', ''),
  ('delivery_carrier', ARRAY['fedex_developer_key', 'fedex_developer_password', 'fedex_account_number', 'fedex_meter_number', 'fedex_rest_developer_key', 'fedex_rest_developer_password', 'fedex_rest_account_number', 'fedex_rest_access_token'], 'delivery_fedex / delivery_fedex_rest', ''),
  ('delivery_carrier', ARRAY['ups_username', 'ups_passwd', 'ups_shipper_number', 'ups_access_number', 'ups_client_id', 'ups_client_secret', 'ups_access_token'], 'delivery_ups / delivery_ups_rest', ''),
  ('delivery_carrier', ARRAY['usps_username'], 'delivery_usps', ''),
  ('delivery_carrier', ARRAY['bpost_account_number', 'bpost_developer_password'], 'delivery_bpost', ''),
  ('delivery_carrier', ARRAY['easypost_test_api_key', 'easypost_production_api_key'], 'delivery_easypost', ''),
  ('delivery_carrier', ARRAY['sendcloud_public_key', 'sendcloud_secret_key'], 'delivery_sendcloud', ''),
  ('delivery_carrier', ARRAY['shiprocket_username', 'shiprocket_password', 'shiprocket_access_token'], 'delivery_shiprocket', ''),
  ('delivery_carrier', ARRAY['starshipit_api_key', 'starshipit_subscription_key'], 'delivery_starshipit', ''),
  -- website
  ('website', ARRAY['google_maps_api_key', 'plausible_shared_key'], 'website', 'API keys billed to PROD')
) AS x(t, cs, m, n), unnest(x.cs) c;

-- tokens Odoo needs present: rotated, so PROD's portal/guest/invitation links do not open UAT and
-- UAT readers learn nothing that opens PROD
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note) VALUES
  ('column', 'discuss_channel', 'uuid', 'rotate', 'mail', '17+: channel invitation link'),
  ('column', 'mail_channel', 'uuid', 'rotate', 'mail', '16: channel invitation link'),
  ('column', 'base_automation', 'webhook_uuid', 'rotate', 'base_automation', '17+: secret part of the incoming webhook URL');
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note) VALUES ('column_re', '.*', '^access_token$', 'rotate', 'portal, mail, calendar, survey, website, ...',
  'portal.mixin documents (sale_order, account_move, purchase_order, project_task, ...), mail_guest, calendar_attendee/event, survey, website_visitor, ir_attachment, rating');

-- 2. The safety net: credential-looking columns of any table, custom modules included ----------------
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note) VALUES
  ('column_re', '.*', '(token|secret|passw|private_key|client_key|hmac_key|api_?key|_pass$|credential)', 'empty', '(any)',
   'text-like or bytea columns named like a credential'),
  -- integration tables: account numbers, logins and site ids are credentials too
  ('column_re', '^(payment_provider|payment_acquirer|delivery_carrier|pos_payment_method|account_online_link|social_account)$',
   '(_key$|_key_|_login$|user_?name$|userid$|_id_client$|site_?id$|pspid$|merchant_(id|account|identifier|key|salt)$|account_number$|shipper_number$|meter_number$|access_(number|code)$|_sha)', 'empty', '(integrations)',
   'credential fields of payment, delivery, POS terminal, bank sync and social connectors'),
  -- not secrets (or handled elsewhere) although their names match
  ('column', 'res_users', 'password', 'keep', 'base', 'UAT access: set by neutralize.sql from uat_password_hash for kept logins, NULL for the others'),
  ('column', 'res_users_apikeys', 'key', 'keep', 'base', 'the rows are deleted'),
  ('column', 'auth_totp_device', 'key', 'keep', 'auth_totp', 'the rows are deleted'),
  ('column', 'payment_provider', 'code', 'keep', 'payment', ''),
  ('column', 'payment_token', 'payment_details', 'keep', 'payment', 'last 4 digits: not a credential'),
  ('column', 'delivery_carrier', 'delivery_type', 'keep', 'delivery', '');

-- 3. Whole tables of credentials --------------------------------------------------------------------
INSERT INTO odoo_secret_catalogue (kind, tbl, rule, module, note) VALUES
  ('rows', 'res_users_apikeys', 'delete', 'base', 'API keys (hashes, usable against UAT)'),
  ('rows', 'auth_totp_device', 'delete', 'auth_totp', 'trusted-device keys of 2FA'),
  ('rows', 'mail_partner_device', 'delete', 'mail (17) / mail_enterprise (16)', 'web push subscriptions of real browsers'),
  ('rows', 'mail_notification_web_push', 'delete', 'mail (17) / mail_enterprise (16)', 'queued web push notifications'),
  ('rows', 'mail_push_device', 'delete', 'mail (18)', 'web push subscriptions of real browsers'),
  ('rows', 'mail_push', 'delete', 'mail (18)', 'queued web push notifications');

-- 4. Config parameters ---------------------------------------------------------------------------
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note)
SELECT 'param', 'ir_config_parameter', k, 'empty', x.m, x.n FROM (VALUES
  (ARRAY['mail.web_push_vapid_private_key', 'mail.web_push_vapid_public_key'], 'mail (17+) / mail_enterprise (16)', 'web push VAPID key pair'),
  (ARRAY['mail.use_sfu_server', 'mail.sfu_server_url', 'mail.sfu_server_key'], 'mail', 'Discuss SFU (calls) server and its key'),
  (ARRAY['mail.use_twilio_rtc_servers', 'mail.twilio_account_sid', 'mail.twilio_account_token'], 'mail', 'Twilio TURN servers'),
  (ARRAY['mail.google_translate_api_key', 'discuss.tenor_api_key'], 'mail', 'translation and GIF APIs billed to PROD'),
  (ARRAY['google_gmail_client_id', 'google_gmail_client_secret'], 'google_gmail', 'OAuth app'),
  (ARRAY['microsoft_outlook_client_id', 'microsoft_outlook_client_secret'], 'microsoft_outlook', 'OAuth app'),
  (ARRAY['google_calendar_client_id', 'google_calendar_client_secret'], 'google_calendar', 'OAuth app'),
  (ARRAY['microsoft_calendar_client_id', 'microsoft_calendar_client_secret'], 'microsoft_calendar', 'OAuth app'),
  (ARRAY['google_drive_client_id', 'google_drive_client_secret', 'google_drive_refresh_token'], 'google_drive', '16'),
  (ARRAY['base_geolocalize.google_map_api_key'], 'base_geolocalize', ''),
  (ARRAY['recaptcha_private_key', 'recaptcha_public_key'], 'google_recaptcha', ''),
  (ARRAY['cf.turnstile_secret', 'cf.turnstile_site_key'], 'website_cf_turnstile', ''),
  (ARRAY['unsplash.access_key', 'unsplash.app_id'], 'web_unsplash', ''),
  (ARRAY['cloud_storage_provider', 'cloud_storage_google_bucket_name', 'cloud_storage_google_account_info',
         'cloud_storage_azure_account_name', 'cloud_storage_azure_container_name', 'cloud_storage_azure_tenant_id',
         'cloud_storage_azure_client_id', 'cloud_storage_azure_client_secret'], 'cloud_storage_google / cloud_storage_azure', '17+: PROD''s bucket'),
  (ARRAY['odoo_ocn.project_id', 'ocn.uuid'], 'mail_mobile', 'push to the Odoo mobile app')
) AS x(ks, m, n), unnest(x.ks) k;
INSERT INTO odoo_secret_catalogue (kind, tbl, col, rule, module, note) VALUES
  ('param_re', 'ir_config_parameter', '(secret|token|api_?key|apikey|passw|private_key|client_key|access_key|account_info|credential)', 'empty', '(any)', 'keys named like a credential'),
  ('param', 'ir_config_parameter', 'database.secret', 'keep', 'base', 'regenerated by neutralize.sql (identity of the copy)'),
  ('param_re', 'ir_config_parameter', '^(auth_signup|auth_password_policy|odoo_mta)\.', 'keep', 'auth_signup, auth_password_policy', 'settings, not secrets');

-- 5. Expansion against this database ----------------------------------------------------------------
-- Every (table, column) of this database the catalogue covers, with its rule and how to empty it.
CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_columns()
RETURNS TABLE (tbl text, col text, rule text, nullable boolean, typ text, maxlen int, has_id boolean)
LANGUAGE sql STABLE AS $f$
  WITH cols AS (
    SELECT c.table_name::text AS t, c.column_name::text AS c, c.is_nullable = 'YES' AS nullable, c.data_type::text AS typ,
           c.character_maximum_length::int AS maxlen
      FROM information_schema.columns c
      JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
     WHERE c.table_schema = current_schema()
       AND c.data_type IN ('text', 'character varying', 'character', 'bytea', 'jsonb', 'json')),
  matched AS (
    SELECT cols.*, k.rule, k.kind,
           row_number() OVER (PARTITION BY cols.t, cols.c
                              ORDER BY (k.rule = 'keep') DESC, (k.kind = 'column') DESC, (k.rule = 'rotate') DESC) AS rn
      FROM cols JOIN odoo_secret_catalogue k
        ON (k.kind = 'column' AND k.tbl = cols.t AND k.col = cols.c)
        OR (k.kind = 'column_re' AND cols.t ~* k.tbl AND cols.c ~* k.col))
  SELECT m.t, m.c, m.rule, m.nullable, m.typ, m.maxlen,
         EXISTS (SELECT 1 FROM information_schema.columns i WHERE i.table_schema = current_schema() AND i.table_name = m.t AND i.column_name = 'id')
    FROM matched m
   WHERE m.rn = 1 AND m.rule <> 'keep'
   ORDER BY 1, 2
$f$;

-- The value a rotated token gets: derived from the copy's own (new) database.secret.
-- (plpgsql, not sql: a database without ir_config_parameter must still be able to load this file)
CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_rotated(t text, c text, id bigint, maxlen int DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE AS $f$
BEGIN
  RETURN left(md5(coalesce((SELECT value FROM ir_config_parameter WHERE key = 'database.secret'), '') || ':' || t || '.' || c || ':' || id)::uuid::text,
              coalesce(maxlen, 36));
END $f$;

-- SQL expressions for one covered column: the clean value, and "this row still holds a secret".
CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_exprs(t text, c text, rule text, nullable boolean, typ text, maxlen int, has_id boolean,
                                                      OUT clean text, OUT dirty text)
LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
  IF rule = 'rotate' AND has_id AND typ IN ('text', 'character varying', 'character') THEN
    clean := format('CASE WHEN %1$I IS NULL THEN NULL ELSE pg_temp.odoo_secret_rotated(%2$L, %3$L, id, %4$s) END', c, t, c, coalesce(maxlen::text, 'NULL'));
    dirty := format('(%1$I IS NOT NULL AND %1$I IS DISTINCT FROM %2$s)', c, clean);
  ELSE
    clean := CASE WHEN nullable THEN 'NULL'
                  WHEN typ = 'bytea' THEN $$'\x'::bytea$$
                  WHEN typ IN ('jsonb', 'json') THEN format($$'{}'::%s$$, typ)
                  ELSE $$''$$ END;
    dirty := CASE WHEN typ IN ('jsonb', 'json') THEN format($$(%1$I IS NOT NULL AND %1$I::text NOT IN ('{}', 'null', '""'))$$, c)
                  WHEN typ = 'bytea' THEN format('(%1$I IS NOT NULL AND length(%1$I) > 0)', c)
                  ELSE format($$(%1$I IS NOT NULL AND %1$I <> '')$$, c) END;
  END IF;
END $f$;

CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_param_dirty() RETURNS TABLE (key text)
LANGUAGE plpgsql STABLE AS $f$
BEGIN
  RETURN QUERY SELECT p.key::text FROM ir_config_parameter p
   WHERE p.value <> ''
     AND EXISTS (SELECT 1 FROM odoo_secret_catalogue k
                  WHERE k.rule <> 'keep' AND ((k.kind = 'param' AND k.col = p.key) OR (k.kind = 'param_re' AND p.key ~* k.col)))
     AND NOT EXISTS (SELECT 1 FROM odoo_secret_catalogue k
                      WHERE k.rule = 'keep' AND ((k.kind = 'param' AND k.col = p.key) OR (k.kind = 'param_re' AND p.key ~* k.col)));
END $f$;

-- 6. Apply (neutralize.sql): one UPDATE per table; returns what changed ------------------------------
CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_apply() RETURNS TABLE (place text, rows bigint)
LANGUAGE plpgsql AS $f$
DECLARE r record; x record; sets text[] := '{}'; dirt text[] := '{}'; cur text; n bigint;
BEGIN
  FOR r IN SELECT DISTINCT c.tbl FROM odoo_secret_catalogue c WHERE c.kind = 'rows' AND pg_temp.odoo_has_table(c.tbl) ORDER BY 1 LOOP
    EXECUTE format('DELETE FROM %I', r.tbl);
    GET DIAGNOSTICS n = ROW_COUNT;
    place := r.tbl || ' (rows)'; rows := n; RETURN NEXT;
  END LOOP;
  -- columns come ordered by table: one UPDATE per table, touching only the rows that hold a secret
  FOR r IN SELECT * FROM pg_temp.odoo_secret_columns() UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL LOOP
    IF cur IS NOT NULL AND r.tbl IS DISTINCT FROM cur THEN
      EXECUTE format('UPDATE %I SET %s WHERE %s', cur, array_to_string(sets, ', '), array_to_string(dirt, ' OR '));
      GET DIAGNOSTICS n = ROW_COUNT;
      place := cur; rows := n; RETURN NEXT;
      sets := '{}'; dirt := '{}';
    END IF;
    EXIT WHEN r.tbl IS NULL;
    cur := r.tbl;
    SELECT * INTO x FROM pg_temp.odoo_secret_exprs(r.tbl, r.col, r.rule, r.nullable, r.typ, r.maxlen, r.has_id);
    sets := sets || format('%I = CASE WHEN %s THEN %s ELSE %I END', r.col, x.dirty, x.clean, r.col);
    dirt := dirt || x.dirty;
  END LOOP;
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    DELETE FROM ir_config_parameter p WHERE p.key IN (SELECT d.key FROM pg_temp.odoo_secret_param_dirty() d);
    GET DIAGNOSTICS n = ROW_COUNT;
    place := 'ir_config_parameter'; rows := n; RETURN NEXT;
  END IF;
END $f$;

-- 7. Check (verify-secrets.sql, the pipeline's verifier): where a catalogued secret is left --------
-- One row per place still holding one: 'table.column', 'table (rows)' or 'ir_config_parameter[key]',
-- the rule it breaks and a count — never a value.
CREATE OR REPLACE FUNCTION pg_temp.odoo_secret_findings() RETURNS TABLE (place text, rule text, count bigint)
LANGUAGE plpgsql STABLE AS $f$
DECLARE r record; k record; n bigint;
BEGIN
  FOR r IN SELECT DISTINCT c.tbl FROM odoo_secret_catalogue c WHERE c.kind = 'rows' AND pg_temp.odoo_has_table(c.tbl) ORDER BY 1 LOOP
    EXECUTE format('SELECT count(*) FROM %I', r.tbl) INTO n;
    IF n > 0 THEN place := r.tbl || ' (rows)'; rule := 'delete'; count := n; RETURN NEXT; END IF;
  END LOOP;
  FOR r IN SELECT * FROM pg_temp.odoo_secret_columns() LOOP
    SELECT * INTO k FROM pg_temp.odoo_secret_exprs(r.tbl, r.col, r.rule, r.nullable, r.typ, r.maxlen, r.has_id);
    EXECUTE format('SELECT count(*) FROM %I WHERE %s', r.tbl, k.dirty) INTO n;
    IF n > 0 THEN place := r.tbl || '.' || r.col; rule := r.rule; count := n; RETURN NEXT; END IF;
  END LOOP;
  IF pg_temp.odoo_has_table('ir_config_parameter') THEN
    FOR r IN SELECT d.key FROM pg_temp.odoo_secret_param_dirty() d ORDER BY 1 LOOP
      place := 'ir_config_parameter[' || r.key || ']'; rule := 'empty'; count := 1; RETURN NEXT;
    END LOOP;
  END IF;
END $f$;
