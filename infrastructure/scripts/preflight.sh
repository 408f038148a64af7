#!/usr/bin/env bash
# Checks, before anything is deployed, what a first deployment needs and the template cannot do:
#  1. GitHub credentials: ODOO_GITHUB_TOKEN, or the GitHub App (ODOO_GITHUB_APP_ID,
#     ODOO_GITHUB_APP_INSTALLATION_ID, ODOO_GITHUB_APP_PRIVATE_KEY). Without them the app refuses to
#     start in Azure (shared/config.ts) and no merge would ever be deployed.
#  2. The subscription's resource providers are registered, Microsoft.App included (Flex
#     Consumption's VNet integration needs it; a fresh subscription does not have it). Missing ones
#     are registered (`az provider register --wait`, needs */register/action on the subscription,
#     which Owner and Contributor have).
#  3. The region (AZURE_LOCATION) offers Flex Consumption. Asked of Azure at the time
#     (`az functionapp list-flexconsumption-locations`) rather than kept as an @allowed list in
#     main.bicep: Microsoft adds Flex regions often, and Microsoft's own templates carry lists that
#     disagree with each other and with the CLI; a stale list would refuse a good region or accept a
#     bad one, while the CLI answers what the platform supports now.
# Run by azd (preprovision hook, after new-secrets.sh) and by .github/workflows/deploy.yml.
# Without a logged-in `az` the provider step cannot run: it fails and says what to run.
set -euo pipefail

PROVIDERS=(
  Microsoft.App Microsoft.Web Microsoft.Storage Microsoft.ServiceBus Microsoft.KeyVault
  Microsoft.Compute Microsoft.Network Microsoft.ManagedIdentity Microsoft.OperationalInsights
  Microsoft.Insights
)

fail() { echo "preflight: $*" >&2; exit 1; }

# 1. GitHub credentials
if [ -z "${ODOO_GITHUB_TOKEN:-}" ]; then
  app_set=0
  for v in ODOO_GITHUB_APP_ID ODOO_GITHUB_APP_INSTALLATION_ID ODOO_GITHUB_APP_PRIVATE_KEY; do
    [ -n "${!v:-}" ] && app_set=$((app_set + 1))
  done
  if [ "$app_set" -eq 0 ]; then
    fail "no GitHub credentials: set ODOO_GITHUB_TOKEN, or ODOO_GITHUB_APP_ID + ODOO_GITHUB_APP_INSTALLATION_ID + ODOO_GITHUB_APP_PRIVATE_KEY (azd env set NAME value)"
  elif [ "$app_set" -ne 3 ]; then
    fail "incomplete GitHub App: ODOO_GITHUB_APP_ID, ODOO_GITHUB_APP_INSTALLATION_ID and ODOO_GITHUB_APP_PRIVATE_KEY are all needed"
  fi
fi
echo "preflight: GitHub credentials present"

# 2. Resource providers
command -v az >/dev/null || fail "the Azure CLI (az) is needed to check the resource providers; or register them yourself: az provider register --namespace Microsoft.App --wait (and ${PROVIDERS[*]:1})"
az account show --output none 2>/dev/null || fail "az is not logged in (az login); needed to check that ${PROVIDERS[*]} are registered"
for ns in "${PROVIDERS[@]}"; do
  state="$(az provider show --namespace "$ns" --query registrationState --output tsv 2>/dev/null || echo Unknown)"
  if [ "$state" != "Registered" ]; then
    echo "preflight: $ns is $state, registering"
    az provider register --namespace "$ns" --wait --output none || fail "could not register $ns (needs */register/action on the subscription)"
  fi
done
echo "preflight: resource providers registered: ${PROVIDERS[*]}"

# 3. Flex Consumption in the chosen region
[ -n "${AZURE_LOCATION:-}" ] || fail "AZURE_LOCATION is not set (azd env set AZURE_LOCATION <region>); it must be a region with Flex Consumption: az functionapp list-flexconsumption-locations --query '[].name' --output tsv"
want="$(echo "$AZURE_LOCATION" | tr -d ' ' | tr '[:upper:]' '[:lower:]')"
regions="$(az functionapp list-flexconsumption-locations --query '[].name' --output tsv 2>/dev/null)" \
  || fail "could not list the Flex Consumption regions (az functionapp list-flexconsumption-locations); is the Azure CLI recent enough (2.60 or later)?"
found=0
while IFS= read -r r; do
  if [ "$(echo "$r" | tr -d ' \r' | tr '[:upper:]' '[:lower:]')" = "$want" ]; then found=1; fi
done <<<"$regions"
[ "$found" -eq 1 ] || fail "Flex Consumption is not offered in $AZURE_LOCATION; choose one of: $(echo "$regions" | tr '\n' ' ')(azd env set AZURE_LOCATION <region>)"
echo "preflight: Flex Consumption is offered in $AZURE_LOCATION"
