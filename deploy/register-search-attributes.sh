#!/bin/sh
# Registers the service's custom search attributes (the delivery log's index) on
# the Temporal namespace, then exits 0. Idempotent: attributes already registered
# (with the same type) are left alone, so it can run on every `docker compose up`.
#
# Runs in the temporalio/admin-tools image (POSIX sh, the `temporal` CLI):
#   the `temporal-setup` service of docker-compose.yml.
#
# Keep SEARCH_ATTRIBUTES in step with workflows/search_attributes.py (ALL).
#
# Environment:
#   TEMPORAL_ADDRESS             frontend, host:port              (default temporal:7233)
#   TEMPORAL_NAMESPACE           namespace                        (default default)
#   TEMPORAL_NAMESPACE_RETENTION if set, applied to the namespace (e.g. 720h)
#   WAIT_SECONDS                 how long to wait for the server  (default 300)

set -eu

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"

# name:type, one per line. Types as the CLI spells them (Keyword, Int, ...).
SEARCH_ATTRIBUTES="
WebhookAccount:Keyword
WebhookEndpointId:Keyword
WebhookEventId:Keyword
WebhookEvent:Keyword
WebhookKind:Keyword
WebhookResult:Keyword
WebhookRetries:Int
WebhookTimeSpentMs:Int
WebhookOrderId:Keyword
WebhookTransactionId:Keyword
WebhookCarrier:Keyword
WebhookStatusCode:Int
"

log() { echo "register-search-attributes: $*"; }

list_attributes() {
    temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" 2>&1
}

# A whole-word match: WebhookEvent does not match WebhookEventId.
is_registered() { printf '%s\n' "$2" | grep -qw -- "$1"; }

# 1. Wait until the server answers and the namespace exists. auto-setup creates
#    the namespace in the background after the server is up, so a healthy server
#    is not enough: listing the namespace's search attributes is the real test.
log "waiting for namespace '$NAMESPACE' on $ADDRESS"
waited=0
until current="$(list_attributes)"; do
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
        log "gave up after ${WAIT_SECONDS}s; last answer:"
        printf '%s\n' "$current" >&2
        exit 1
    fi
    sleep 2
    waited=$((waited + 2))
done

# 2. The retention decides how long finished deliveries stay in the log.
#    auto-setup applies DEFAULT_NAMESPACE_RETENTION only when it creates the
#    namespace; this keeps an existing namespace in step with the setting.
if [ -n "$RETENTION" ]; then
    if temporal operator namespace update --address "$ADDRESS" --namespace "$NAMESPACE" \
        --retention "$RETENTION" >/dev/null 2>&1; then
        log "retention of '$NAMESPACE' is $RETENTION"
    else
        log "warning: could not set the retention of '$NAMESPACE' to $RETENTION (left unchanged)"
    fi
fi

# 3. Create what is missing, one attribute per call so one failure names itself.
created=0
for entry in $SEARCH_ATTRIBUTES; do
    name="${entry%%:*}"
    type="${entry#*:}"
    if is_registered "$name" "$current"; then
        log "$name ($type) already registered"
        continue
    fi
    if output="$(temporal operator search-attribute create --address "$ADDRESS" \
        --namespace "$NAMESPACE" --name "$name" --type "$type" 2>&1)"; then
        log "$name ($type) created"
        created=$((created + 1))
    else
        # Another run may have created it meanwhile ("already exists"): fine if it is there now.
        # A different type is an error the CLI reports, and it is not ignored.
        current="$(list_attributes)" || true
        if is_registered "$name" "$current" && ! printf '%s' "$output" | grep -qi "different type"; then
            log "$name ($type) already registered"
        else
            log "could not create $name ($type): $output"
            exit 1
        fi
    fi
done

# 4. Wait until every attribute is visible to the frontend (its namespace cache
#    refreshes every few seconds), so the api and worker never start before them.
if [ "$created" -gt 0 ]; then
    waited=0
    while :; do
        current="$(list_attributes)" || current=""
        missing=""
        for entry in $SEARCH_ATTRIBUTES; do
            name="${entry%%:*}"
            is_registered "$name" "$current" || missing="$missing $name"
        done
        [ -z "$missing" ] && break
        if [ "$waited" -ge 60 ]; then
            log "still not listed after 60s:$missing"
            exit 1
        fi
        sleep 2
        waited=$((waited + 2))
    done
    # One more namespace-cache refresh interval for good measure.
    sleep 10
fi

log "all search attributes registered on '$NAMESPACE'"
