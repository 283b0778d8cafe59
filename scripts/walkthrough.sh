#!/usr/bin/env bash
# The README's curl walk-through, runnable: sign up → verify → log in → browse → cart →
# buy from the demo drop → pay → follow the order → a merchant launches a drop with a
# FlashSale manifest and the CLI (GOODSMALL names the shop binary; default: cargo run)
# → buy from it once it opens,
# against a running one-process shop (`cargo run -p goodsmall-shop`).
#   scripts/walkthrough.sh [http://127.0.0.1:8080]
set -euo pipefail
API="${1:-http://127.0.0.1:8080}"
EMAIL="fan-$RANDOM$RANDOM@example.com"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Ask for a verification code (it lands in the dev mailbox)"
curl -sf -X POST "$API/api/auth/email-verifications" -H 'content-type: application/json' -d "{\"email\":\"$EMAIL\"}"
sleep 0.5
CODE=$(curl -sf "$API/api/dev/mailbox?to=$EMAIL" | json "d[0]['body']" | grep -oE '[0-9]{6}' | head -1)
echo "code: $CODE"

step "2. Confirm the code"
curl -sf -X POST "$API/api/auth/email-verifications/confirm" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"code\":\"$CODE\"}"

step "3. Sign up"
curl -sf -X POST "$API/api/users" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"correct-horse-1\",\"name\":\"Kim Minji\",\"phone\":\"+82 10-5555-0101\",\"address\":\"1 Olympic-ro, Seoul\"}"

step "4. Log in"
TOKEN=$(curl -sf -X POST "$API/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"correct-horse-1\"}" | json "d['access_token']")
echo "access token: ${TOKEN:0:24}…"

step "5. Browse the demo goods"
PAGE=$(curl -sf "$API/api/products?size=3")
echo "$PAGE" | json "[(p['id'], p['name'], p['price']) for p in d['items']]"
PRODUCT=$(echo "$PAGE" | json "d['items'][0]['id']")
curl -sf "$API/api/products/$PRODUCT/stock"; echo

step "6. Put two in the cart and look at it"
curl -sf -X POST "$API/api/cart/items" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"product_id\":$PRODUCT,\"quantity\":2}" >/dev/null
curl -sf "$API/api/cart" -H "authorization: Bearer $TOKEN" | json "d"

step "7. Find the demo drop and buy one (answered 202 once the order is durable)"
SALE=$(curl -sf "$API/api/sales" | json "d[0]['id']")
curl -sf "$API/api/sales/$SALE" | json "{k: d[k] for k in ('id', 'price', 'stock', 'remaining', 'per_user_limit')}"
ORDER=$(curl -sf -X POST "$API/api/sales/$SALE/purchases" -H "authorization: Bearer $TOKEN" \
  -H "idempotency-key: walkthrough-$RANDOM" -H 'content-type: application/json' -d '{"quantity":1}' | json "d['order_id']")
echo "order: $ORDER"

step "8. Pay (the demo payment provider declines one charge in five, like the original)"
for _ in $(seq 1 50); do # the payment opens when the payment service sees order.created
  STATUS=$(curl -s "$API/api/payments/$ORDER" -H "authorization: Bearer $TOKEN" | json "d.get('status')")
  [ "$STATUS" = PENDING ] && break; sleep 0.1
done
curl -s -X POST "$API/api/payments/$ORDER" -H "authorization: Bearer $TOKEN" -H "idempotency-key: pay-$ORDER" \
  | json "(d.get('status'), d.get('code'), d.get('detail'))"

step "9. Follow the order until the saga settles it"
for _ in $(seq 1 50); do
  STATUS=$(curl -sf "$API/api/orders/$ORDER" -H "authorization: Bearer $TOKEN" | json "d['status']")
  [ "$STATUS" != PROCESSING ] && break; sleep 0.1
done
echo "order status: $STATUS"
case "$STATUS" in COMPLETE|FAILED) ;; *) echo "the order did not settle" >&2; exit 1 ;; esac
curl -sf "$API/api/sales/$SALE" | json "{k: d[k] for k in ('remaining', 'reserved', 'sold')}"
step "10. A merchant launches a drop with a FlashSale manifest (the CLI is the shop's kubectl)"
read -r -a GOODSMALL <<<"${GOODSMALL:-cargo run -q -p goodsmall-shop --}"
export GOODSMALL_URL="$API" GOODSMALL_EMAIL=merchant@goodsmall.dev GOODSMALL_PASSWORD=demo-merchant-1
# It opens in 10 s: the early purchase below must come before, after two CLI runs and a
# login, which take a few seconds on a busy machine (4 s was once too short in CI).
MANIFEST="$(mktemp -t drop.XXXXXX.yaml)"
cat >"$MANIFEST" <<EOF
apiVersion: goodsmall.io/v1alpha1
kind: FlashSale
metadata:
  name: walkthrough-drop
spec:
  productId: $PRODUCT
  stock: 5
  price: "59.00"
  opensAt: $(date -u -d '+10 seconds' +%Y-%m-%dT%H:%M:%SZ)
  closesAt: $(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
  perUserLimit: 1
EOF
"${GOODSMALL[@]}" flashsale apply -f "$MANIFEST"
sleep 1
"${GOODSMALL[@]}" flashsale get
MERCHANT=$(curl -sf -X POST "$API/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$GOODSMALL_EMAIL\",\"password\":\"$GOODSMALL_PASSWORD\"}" | json "d['access_token']")
DROP=$(curl -sf "$API/api/flashsales/walkthrough-drop" -H "authorization: Bearer $MERCHANT" | json "d['status']['saleId']")

step "11. Buy from it: refused until it opens, then accepted"
buy_drop() {
  curl -s -X POST "$API/api/sales/$DROP/purchases" -H "authorization: Bearer $TOKEN" -H "idempotency-key: $1" \
    -H 'content-type: application/json' -d '{"quantity":1}'
}
buy_drop "early-$RANDOM" | json "d.get('code')"
for _ in $(seq 1 200); do
  ANSWER=$(buy_drop drop-walkthrough)
  echo "$ANSWER" | grep -q SALE_NOT_OPEN || break
  sleep 0.1
done
echo "$ANSWER" | json "('drop purchase', d.get('status') or d.get('code'))"
sleep 2.5 # the status refreshes every 2 s while a sale is open
"${GOODSMALL[@]}" flashsale get
rm -f "$MANIFEST"
echo; echo "walk-through complete"
