// Purchase throughput: many shoppers hammering the purchase endpoint of one sale with
// a big stock. Closed loop (a fixed number of VUs, each buying again as soon as it is
// answered) by default; RATE=<purchases/s> switches to an open-loop constant arrival
// rate. Thresholds: p99 of the purchase request, no 5xx, nearly all accepted.
//
//   goodsmall-bench prepare --stock 10000000 --per-user-limit 100 --shoppers 5000 --tokens-out tokens.json
//   BASE_URL=http://127.0.0.1:8080 SALE_ID=<id> TOKENS_FILE=tokens.json VUS=64 DURATION=30s k6 run k6/throughput.js
//
// Each shopper may hold PER_USER_LIMIT units; the script spreads purchases evenly over
// the tokens, so tokens × limit must exceed the purchases of the run (k6 warns when a
// PURCHASE_LIMIT refusal shows up).
import { check } from 'k6';
import { tokens, purchase, newKey, saleCounters } from './lib.js';

const VUS = parseInt(__ENV.VUS || '64', 10);
const DURATION = __ENV.DURATION || '30s';
const RATE = __ENV.RATE ? parseInt(__ENV.RATE, 10) : null;
const P99_MS = parseFloat(__ENV.P99_MS || '50');

const scenario = RATE
  ? {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: VUS,
      maxVUs: VUS * 4,
    }
  : { executor: 'constant-vus', vus: VUS, duration: DURATION };

export const options = {
  scenarios: { purchases: scenario },
  thresholds: {
    [`http_req_duration{name:purchase}`]: [`p(99)<${P99_MS}`],
    http_5xx: ['count==0'],
    purchases_unexpected: ['count==0'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  // Keep connections; shoppers' browsers do too.
  noConnectionReuse: false,
  discardResponseBodies: false,
};

export function setup() {
  const sale = saleCounters();
  if (sale.remaining <= 0) {
    throw new Error(`sale ${sale.id} has nothing left: ${JSON.stringify(sale)}`);
  }
  return { before: sale.reserved + sale.sold };
}

let next = -1;

export default function () {
  // VU v takes tokens v-1, v-1+VUS, v-1+2·VUS, ...: every shopper gets an even share.
  next = next < 0 ? (__VU - 1) % tokens.length : (next + VUS) % tokens.length;
  const { response, outcome, code } = purchase(tokens[next], newKey(), '10s');
  check(response, { accepted: () => outcome === 'accepted' });
  if (outcome === 'unexpected' && Math.random() < 0.01) {
    console.warn(`unexpected answer ${response.status} ${code || ''}: ${response.body}`);
  }
}

export function teardown(data) {
  const sale = saleCounters();
  console.log(
    `sale ${sale.id}: ${sale.reserved + sale.sold - data.before} units taken during the run; ` +
      `stock ${sale.stock}, remaining ${sale.remaining}, reserved ${sale.reserved}, sold ${sale.sold}`,
  );
}
