// Shared parts of the GoodsMall k6 scripts: settings from the environment, the shopper
// tokens, one purchase request and how its answer is classified.
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import { SharedArray } from 'k6/data';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
export const SALE_ID = __ENV.SALE_ID;
if (!SALE_ID) {
  throw new Error('set SALE_ID (goodsmall-bench prepare prints it)');
}

// A JSON array of access tokens, one per synthetic shopper (goodsmall-bench prepare
// writes it). SharedArray keeps one copy for all VUs.
export const tokens = new SharedArray('shopper tokens', () => {
  const path = __ENV.TOKENS_FILE || 'tokens.json';
  const list = JSON.parse(open(path));
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`${path} must hold a non-empty JSON array of tokens`);
  }
  return list;
});

export const accepted = new Counter('purchases_accepted');
// SOLD_OUT / INSUFFICIENT_STOCK: the expected way to be turned away.
export const refused = new Counter('purchases_refused');
// Anything else: PURCHASE_LIMIT, SALE_NOT_OPEN, 4xx, timeouts, ...
export const unexpected = new Counter('purchases_unexpected');
export const serverErrors = new Counter('http_5xx');

const STOCK_REFUSALS = ['SOLD_OUT', 'INSUFFICIENT_STOCK'];

// A fresh Idempotency-Key per intended purchase (k6 has no crypto.randomUUID).
export function newKey() {
  return `k6-${__VU}-${__ITER}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** One purchase of one unit; returns { response, outcome, code }. */
export function purchase(token, key, timeout) {
  const response = http.post(`${BASE_URL}/api/sales/${SALE_ID}/purchases`, '{"quantity":1}', {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'Idempotency-Key': key },
    tags: { name: 'purchase' },
    timeout: timeout || '30s',
  });
  let code = null;
  if (response.status >= 400 && response.body) {
    try {
      code = JSON.parse(response.body).code;
    } catch (_) {
      code = null;
    }
  }
  let outcome;
  if (response.status === 202) {
    outcome = 'accepted';
    accepted.add(1);
  } else if (response.status === 409 && STOCK_REFUSALS.includes(code)) {
    outcome = 'refused';
    refused.add(1);
  } else {
    outcome = 'unexpected';
    unexpected.add(1);
  }
  serverErrors.add(response.status >= 500 ? 1 : 0);
  return { response, outcome, code };
}

/** The sale's live counters (GET /api/sales/{id}). */
export function saleCounters() {
  const response = http.get(`${BASE_URL}/api/sales/${SALE_ID}`, { tags: { name: 'sale' } });
  if (response.status !== 200) {
    throw new Error(`GET /api/sales/${SALE_ID} answered ${response.status}: ${response.body}`);
  }
  return JSON.parse(response.body);
}
