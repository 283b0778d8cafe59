// The drop test of the original system: 110 buyers press "buy" at the same moment for
// a sale of 100 units. Exactly 100 must get 202, the other 10 a 409 SOLD_OUT or
// INSUFFICIENT_STOCK; any oversell, 5xx or other answer fails the run.
//
//   goodsmall-bench prepare --stock 100 --per-user-limit 1 --shoppers 110 --tokens-out drop-tokens.json
//   BASE_URL=http://127.0.0.1:8080 SALE_ID=<id> TOKENS_FILE=drop-tokens.json k6 run k6/drop.js
//
// BUYERS (110) and STOCK (100) may be changed together with the sale.
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { tokens, purchase, newKey, saleCounters } from './lib.js';

const BUYERS = parseInt(__ENV.BUYERS || '110', 10);
const STOCK = parseInt(__ENV.STOCK || '100', 10);

// Units taken beyond the stock, and conservation breaks, measured after the drop.
const oversold = new Counter('oversold_units');
const unconserved = new Counter('conservation_breaks');

export const options = {
  scenarios: {
    drop: { executor: 'per-vu-iterations', vus: BUYERS, iterations: 1, maxDuration: '60s' },
  },
  thresholds: {
    purchases_accepted: [`count==${STOCK}`],
    purchases_refused: [`count==${BUYERS - STOCK}`],
    purchases_unexpected: ['count==0'],
    http_5xx: ['count==0'],
    oversold_units: ['count==0'],
    conservation_breaks: ['count==0'],
    checks: ['rate==1'],
    'http_req_duration{name:purchase}': ['max>=0'], // listed so the summary export keeps it
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '30s',
};

export function setup() {
  if (tokens.length < BUYERS) {
    throw new Error(`need ${BUYERS} shopper tokens, the tokens file has ${tokens.length}`);
  }
  const sale = saleCounters();
  if (sale.stock !== STOCK || sale.remaining !== STOCK) {
    throw new Error(`sale ${sale.id} must be fresh with ${STOCK} units: ${JSON.stringify(sale)}`);
  }
  return { saleId: sale.id };
}

export default function () {
  // One buyer per VU, each with its own token: the per-user limit never bites.
  const { response, outcome, code } = purchase(tokens[__VU - 1], newKey());
  check(response, {
    'answered 202, or 409 SOLD_OUT/INSUFFICIENT_STOCK': () => outcome !== 'unexpected',
    'no 5xx': (r) => r.status < 500,
  });
  if (outcome === 'unexpected') {
    console.warn(`buyer ${__VU}: ${response.status} ${code || ''} ${response.body}`);
  }
}

export function teardown() {
  const sale = saleCounters();
  const taken = sale.reserved + sale.sold;
  oversold.add(Math.max(0, taken - sale.stock));
  unconserved.add(sale.stock === sale.remaining + sale.reserved + sale.sold ? 0 : 1);
  console.log(`sale ${sale.id} after the drop: stock ${sale.stock}, remaining ${sale.remaining}, reserved ${sale.reserved}, sold ${sale.sold}`);
}
