-- lib/pii.sql — personal-data helpers shared by anonymize.sql (generators), verify.sql and the
-- pipeline's verifier (shared/adapters/pii-verifier.ts runs this file in its own transaction): the
-- normalisation of text before a search, and the checksums of IBANs and VAT numbers.
-- Plain SQL, no psql meta-command; everything lives in pg_temp (this session only), and nothing
-- depends on the database's collation or ctype.

-- Letters folded to ASCII lower case, whatever the database's LC_CTYPE (lower() under ctype C leaves
-- É, Ü, Ø as they are): an explicit table of the Latin letters (accents dropped; ß→s, æ→a, œ→o,
-- þ→t, ð→d, ł→l), then lower() under the C collation, which folds A-Z only.
-- (ASCII text, most of it, skips the table: translate() on multibyte text costs ~100 µs a call)
CREATE OR REPLACE FUNCTION pg_temp.odoo_fold(x text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT CASE WHEN octet_length(x) = length(x) THEN lower(x COLLATE "C") ELSE lower(translate(x,
    'ÀÁÂÃÄÅĀĂĄàáâãäåāăąÆæÇĆĈĊČçćĉċčĎĐďđÐðÈÉÊËĒĔĖĘĚèéêëēĕėęěĜĞĠĢĝğġģĤĦĥħÌÍÎÏĨĪĬĮİìíîïĩīĭįıĴĵĶķĹĻĽĿŁĺļľŀłÑŃŅŇñńņňÒÓÔÕÖØŌŎŐòóôõöøōŏőŒœŔŖŘŕŗřŚŜŞŠśŝşšßŢŤŦţťŧÞþÙÚÛÜŨŪŬŮŰŲùúûüũūŭůűųŴŵÝŸŶýÿŷŹŻŽźżž',
    'AAAAAAAAAaaaaaaaaaAaCCCCCcccccDDddDdEEEEEEEEEeeeeeeeeeGGGGggggHHhhIIIIIIIIIiiiiiiiiiJjKkLLLLLlllllNNNNnnnnOOOOOOOOOoooooooooOoRRRrrrSSSSssssSTTTtttTtUUUUUUUUUUuuuuuuuuuuWwYYYyyyZZZzzz') COLLATE "C") END
$f$;

-- Transliteration of the letters that have one (Müller → Mueller, Åsa → Aasa, Øystein → Oeystein).
CREATE OR REPLACE FUNCTION pg_temp.odoo_translit(x text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT CASE WHEN octet_length(x) = length(x) THEN lower(x COLLATE "C") ELSE pg_temp.odoo_fold(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(x,
    'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'Ä', 'Ae'), 'Ö', 'Oe'), 'Ü', 'Ue'), 'ß', 'ss'), 'å', 'aa'), 'Å', 'Aa'), 'ø', 'oe'), 'Ø', 'Oe')) END
$f$;
-- Words of a text (letters of any Latin script, apostrophes and hyphens inside): code-point ranges, so
-- the same under every ctype.
CREATE OR REPLACE FUNCTION pg_temp.odoo_words(x text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT array_remove(regexp_split_to_array(x, '[^A-Za-zÀ-ÖØ-öø-ɏ''’]+'), '')
$f$;
-- The IBAN at the start of `grouped` (letters upper-cased, possibly grouped by single spaces) when one
-- of its country's exact length ends there at a word boundary and its mod-97 check holds; NULL otherwise.
CREATE OR REPLACE FUNCTION pg_temp.odoo_iban_at(grouped text) RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
  len integer := (('{"AD":24,"AE":23,"AL":28,"AT":20,"AZ":28,"BA":20,"BE":16,"BG":22,"BH":22,"BR":29,"CH":21,"CR":22,"CY":28,"CZ":24,"DE":22,' ||
                   '"DK":18,"DO":28,"EE":20,"EG":29,"ES":24,"FI":18,"FO":18,"FR":27,"GB":22,"GE":22,"GI":23,"GL":18,"GR":27,"GT":28,"HR":21,' ||
                   '"HU":28,"IE":22,"IL":23,"IS":26,"IT":27,"JO":30,"KW":30,"KZ":20,"LB":28,"LI":21,"LT":20,"LU":20,"LV":21,"MC":27,"MD":24,' ||
                   '"ME":22,"MK":19,"MR":27,"MT":31,"MU":30,"NL":18,"NO":15,"PK":24,"PL":28,"PS":29,"PT":25,"QA":29,"RO":24,"RS":22,"SA":24,' ||
                   '"SE":24,"SI":19,"SK":24,"SM":27,"TN":24,"TR":26,"UA":29,"VG":24,"XK":20}')::jsonb ->> left(grouped, 2))::integer;
  n integer := 0; i integer; ch text; iban text := '';
BEGIN
  IF len IS NULL THEN RETURN NULL; END IF;
  FOR i IN 1 .. length(grouped) LOOP
    ch := substr(grouped, i, 1);
    CONTINUE WHEN ch = ' ';
    iban := iban || ch;
    n := n + 1;
    IF n = len THEN
      IF i < length(grouped) AND substr(grouped, i + 1, 1) <> ' ' THEN RETURN NULL; END IF;
      RETURN CASE WHEN pg_temp.odoo_iban_ok(iban) THEN iban END;
    END IF;
  END LOOP;
  RETURN NULL;
END $f$;
-- The keys of a name: each pair of consecutive words, accents dropped and transliterated.
CREATE OR REPLACE FUNCTION pg_temp.odoo_name_keys(name text) RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT DISTINCT k FROM (SELECT pg_temp.odoo_words(name) w) s, generate_series(1, cardinality(w) - 1) i,
    LATERAL (VALUES (pg_temp.odoo_fold(w[i] || ' ' || w[i + 1])), (pg_temp.odoo_translit(w[i] || ' ' || w[i + 1]))) v(k)
   WHERE length(w[i]) >= 2 AND length(w[i + 1]) >= 2
$f$;

-- Text as a person reads it: HTML entities of '@', '.', '+', spaces and the non-breaking space decoded,
-- URL-encoded '@', '.', '+', ' ' decoded, every Unicode space and the non-breaking space made a plain
-- space. Cheap when there is nothing to decode (callers test strpos of '&' / '%' / U+00A0 first).
CREATE OR REPLACE FUNCTION pg_temp.odoo_decode(x text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT translate(
    regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(x,
      '&#0*64;|&#[xX]0*40;|&commat;|%40', '@', 'gi'),
      '&#0*46;|&#[xX]0*2[eE];|&period;|%2[eE]', '.', 'g'),
      '&#0*43;|&#[xX]0*2[bB];|&plus;|%2[bB]', '+', 'g'),
      '&nbsp;|&#0*160;|&#[xX]0*[aA]0;|&#0*32;|&#[xX]0*20;|%20|%[cC]2%[aA]0', ' ', 'g'),
      '&#0*45;|&#[xX]0*2[dD];|%2[dD]', '-', 'g'),
      '&amp;', '&', 'g'),
      '%25', '%', 'g'),
    E'\u00a0\u2007\u202f\u2009\u200a\u2002\u2003', '       ')
$f$;

-- ISO 13616 check: move the first 4 characters to the end, letters to numbers (A=10 ... Z=35), mod 97 = 1.
CREATE OR REPLACE FUNCTION pg_temp.odoo_mod97(s text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT (string_agg(CASE WHEN c BETWEEN 'A' AND 'Z' THEN (ascii(c) - 55)::text ELSE c END, '' ORDER BY o)::numeric % 97)::integer
    FROM regexp_split_to_table(upper(s), '') WITH ORDINALITY AS t(c, o)
$f$;
CREATE OR REPLACE FUNCTION pg_temp.odoo_iban_ok(iban text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT iban ~ '^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$' AND pg_temp.odoo_mod97(substr(iban, 5) || left(iban, 4)) = 1
$f$;
-- The anonymized bank account of row `n`: a Dutch IBAN (NLkk + 4-letter bank + 10 digits) of the bank
-- code ANON, which no Dutch bank has: checksum-valid and unique, recognisable as generated.
CREATE OR REPLACE FUNCTION pg_temp.odoo_fake_iban(n bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT 'NL' || lpad((98 - pg_temp.odoo_mod97('ANON' || lpad(n::text, 10, '0') || 'NL00'))::text, 2, '0') || 'ANON' || lpad(n::text, 10, '0')
$f$;

-- VAT numbers with a simple public checksum:
--   BE: 10 digits starting 0/1, last two = 97 - (first eight mod 97)
--   DE: 9 digits, ISO 7064 MOD 11,10
--   FR: 2-character key + 9-digit SIREN; numeric key = (12 + 3 * (SIREN mod 97)) mod 97
--   NL: 9 digits + 'B' + 2 digits; weights 9..2 and -1 on the 9 digits, sum mod 11 = 0 (or, since
--       2020, mod 97 of 'NL' + number as an ISO 7064 check = 1)
CREATE OR REPLACE FUNCTION pg_temp.odoo_vat_ok(vat text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE d text := substr(vat, 3); p integer := 10; s integer; i integer; w integer := 0;
BEGIN
  CASE left(vat, 2)
  WHEN 'BE' THEN
    RETURN d ~ '^[01][0-9]{9}$' AND 97 - (left(d, 8)::bigint % 97) = right(d, 2)::integer;
  WHEN 'DE' THEN
    IF d !~ '^[1-9][0-9]{8}$' THEN RETURN false; END IF;
    FOR i IN 1 .. 8 LOOP
      s := (substr(d, i, 1)::integer + p) % 10;
      IF s = 0 THEN s := 10; END IF;
      p := (2 * s) % 11;
    END LOOP;
    RETURN (11 - p) % 10 = substr(d, 9, 1)::integer;
  WHEN 'FR' THEN
    RETURN d ~ '^[0-9]{2}[0-9]{9}$' AND left(d, 2)::integer = (12 + 3 * (substr(d, 3)::bigint % 97)) % 97;
  WHEN 'NL' THEN
    IF d !~ '^[0-9]{9}B[0-9]{2}$' THEN RETURN false; END IF;
    FOR i IN 1 .. 8 LOOP w := w + (10 - i) * substr(d, i, 1)::integer; END LOOP;
    RETURN (w - substr(d, 9, 1)::integer) % 11 = 0 OR pg_temp.odoo_mod97(vat) = 1;
  ELSE
    RETURN false;
  END CASE;
END $f$;
-- The anonymized VAT number of row `n` (n < 10 000 000): a Belgian number of the series '1' + n,
-- checksum-valid and unique.
CREATE OR REPLACE FUNCTION pg_temp.odoo_fake_vat(n bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
  SELECT 'BE1' || lpad(n::text, 7, '0') || lpad((97 - (('1' || lpad(n::text, 7, '0'))::bigint % 97))::text, 2, '0')
$f$;

-- Personal data a person would recognise in a text, without knowing anybody: the kinds found, as
-- 'email' (an address outside `allowed`), 'phone' (an international number, + or 00, 8-15 digits, not
-- the reserved +1 0xx/1xx range the anonymization writes), 'iban' (checksum-valid, not a generated
-- one), 'vat' (checksum-valid BE/DE/FR/NL, not a generated one). `x` is decoded and folded first.
CREATE OR REPLACE FUNCTION pg_temp.odoo_pii_kinds(raw text, allowed text[]) RETURNS text[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
  x text := pg_temp.odoo_decode(raw);
  u text;
  m text[];
  c text;
  digits text;
  out text[] := '{}';
  l integer;
BEGIN
  IF strpos(x, '@') > 0 THEN
    FOR m IN SELECT regexp_matches(x, '([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})', 'g') LOOP
      IF lower(split_part(m[1], '@', 2)) <> ALL (allowed) THEN out := out || 'email'::text; EXIT; END IF;
    END LOOP;
  END IF;
  IF x !~ '[0-9]([ .()/-]?[0-9]){6}' THEN RETURN out; END IF;
  -- phones: + or 00, then 8-15 digits with the usual separators
  -- (hashes and tokens — 16+ hexadecimal characters with a letter — are not text: their digits are no number)
  FOR m IN SELECT regexp_matches(regexp_replace(x, '(?<![0-9A-Fa-f])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Fa-f])', '|', 'g'),
                                 '(?:\+|(?:^|[^0-9A-Za-z])00)([1-9](?:[ .()/-]{0,2}[0-9]){7,14})', 'g') LOOP
    digits := regexp_replace(m[1], '[^0-9]', '', 'g');
    IF NOT (digits ~ '^1[01]') THEN out := out || 'phone'::text; EXIT; END IF;
  END LOOP;
  -- hashes (32+ hexadecimal characters with a letter: md5, sha1, sha256 — attachment file names and
  -- checksums) are not text either: a VAT or IBAN shape inside one is chance (no IBAN is that long and
  -- all hexadecimal)
  u := upper(pg_temp.odoo_fold(regexp_replace(x, '(?<![0-9A-Fa-f])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])', '|', 'g')));
  -- IBANs: country, check digits, then the country's exact length of alphanumerics (grouped by spaces or
  -- not), ending at a word boundary, mod-97 valid
  FOR m IN SELECT regexp_matches(u, '(?:^|[^A-Z0-9])([A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30})', 'g') LOOP
    c := pg_temp.odoo_iban_at(m[1]);
    IF c IS NOT NULL AND c !~ '^NL[0-9]{2}ANON' THEN out := out || 'iban'::text; EXIT; END IF;
  END LOOP;
  -- VAT numbers: BE/DE/FR/NL followed by their digits, separators allowed
  FOR m IN SELECT regexp_matches(u, '(?:^|[^A-Z0-9])((?:BE|DE|FR|NL)[ .-]?[0-9A-Z](?:[ .-]?[0-9B]){8,12})', 'g') LOOP
    c := regexp_replace(m[1], '[ .-]', '', 'g');
    FOREACH l IN ARRAY ARRAY[14, 13, 12, 11] LOOP
      IF length(c) >= l AND pg_temp.odoo_vat_ok(left(c, l)) AND left(c, l) !~ '^BE1' THEN out := out || 'vat'::text; EXIT; END IF;
    END LOOP;
    EXIT WHEN 'vat' = ANY (out);
  END LOOP;
  RETURN out;
END $f$;
