// A drop with a waiting room, as shoppers' apps meet it: every shopper joins during the
// pre-queue, polls its ticket at the interval the answer's Retry-After says, and buys
// once admitted, with the admission in the Admission-Token header. Exactly the stock
// must be sold, to admitted shoppers only; everyone else must end up told SOLD_OUT;
// any 5xx or other answer fails the run.
//
//   goodsmall-bench prepare --stock 100 --per-user-limit 1 --shoppers 500 \
//       --queue-rate 50 --pre-queue-secs 600 --opens-in-secs 20 --tokens-out queue-tokens.json
//   BASE_URL=http://127.0.0.1:8080 SALE_ID=<id> TOKENS_FILE=queue-tokens.json k6 run k6/queue.js
//
// SHOPPERS (500) and STOCK (100) may be changed together with the sale.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { BASE_URL, SALE_ID, tokens, newKey, saleCounters, accepted, unexpected, serverErrors } from './lib.js';

const SHOPPERS = parseInt(__ENV.SHOPPERS || '500', 10);
const STOCK = parseInt(__ENV.STOCK || '100', 10);

const toldSoldOut = new Counter('queue_told_sold_out');
const polls = new Counter('queue_polls');
const admittedAfter = new Trend('queue_wait_until_admitted', true);
const oversold = new Counter('oversold_units');

export const options = {
  scenarios: {
    queue: { executor: 'per-vu-iterations', vus: SHOPPERS, iterations: 1, maxDuration: '10m' },
  },
  thresholds: {
    purchases_accepted: [`count==${Math.min(STOCK, SHOPPERS)}`],
    queue_told_sold_out: [`count==${Math.max(0, SHOPPERS - STOCK)}`],
    purchases_unexpected: ['count==0'],
    http_5xx: ['count==0'],
    oversold_units: ['count==0'],
    checks: ['rate==1'],
    'http_req_duration{name:queue_poll}': ['max>=0'], // listed so the summary keeps it
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '30s',
};

export function setup() {
  if (tokens.length < SHOPPERS) {
    throw new Error(`need ${SHOPPERS} shopper tokens, the tokens file has ${tokens.length}`);
  }
  const sale = saleCounters();
  if (!sale.admission) {
    throw new Error(`sale ${sale.id} has no waiting room (create it with --queue-rate)`);
  }
  return { saleId: sale.id };
}

function headers(token) {
  return { Authorization: `Bearer ${token}` };
}

export default function () {
  const token = tokens[__VU - 1];
  const queue = `${BASE_URL}/api/sales/${SALE_ID}/queue`;
  let answer = http.post(queue, null, { headers: headers(token), tags: { name: 'queue_join' } });
  serverErrors.add(answer.status >= 500 ? 1 : 0);
  check(answer, { 'joined': (r) => r.status === 200 });
  const started = Date.now();
  for (;;) {
    if (answer.status !== 200) {
      unexpected.add(1);
      console.warn(`shopper ${__VU}: ${answer.status} ${answer.body}`);
      return;
    }
    const ticket = JSON.parse(answer.body);
    if (ticket.state === 'ADMITTED') {
      admittedAfter.add(Date.now() - started);
      buy(token, ticket.admission.token);
      return;
    }
    if (ticket.state === 'SOLD_OUT') {
      toldSoldOut.add(1);
      return;
    }
    if (ticket.state !== 'PRE_QUEUE' && ticket.state !== 'WAITING') {
      unexpected.add(1);
      console.warn(`shopper ${__VU}: ${ticket.state}`);
      return;
    }
    sleep(parseInt(answer.headers['Retry-After'] || '1', 10));
    answer = http.get(queue, { headers: headers(token), tags: { name: 'queue_poll' } });
    polls.add(1);
    serverErrors.add(answer.status >= 500 ? 1 : 0);
  }
}

function buy(token, admission) {
  const response = http.post(`${BASE_URL}/api/sales/${SALE_ID}/purchases`, '{"quantity":1}', {
    headers: Object.assign(headers(token), {
      'Content-Type': 'application/json',
      'Idempotency-Key': newKey(),
      'Admission-Token': admission,
    }),
    tags: { name: 'purchase' },
  });
  serverErrors.add(response.status >= 500 ? 1 : 0);
  if (response.status === 202) {
    accepted.add(1);
    pay(token, JSON.parse(response.body).order_id);
  } else if (response.status === 409 && JSON.parse(response.body).code === 'SOLD_OUT') {
    // Admitted as the last units went to others' turns: told so at the purchase.
    toldSoldOut.add(1);
  } else {
    unexpected.add(1);
    console.warn(`admitted shopper ${__VU}: ${response.status} ${response.body}`);
  }
}

// Pays as soon as the payment falls due (it follows the order's event), so that the
// units are sold and, once none is left or held, every waiting shopper is told SOLD_OUT.
function pay(token, orderId) {
  const payment = `${BASE_URL}/api/payments/${orderId}`;
  for (let i = 0; i < 100; i++) {
    const due = http.get(payment, { headers: headers(token), tags: { name: 'payment' } });
    if (due.status === 200 && JSON.parse(due.body).status === 'PENDING') {
      const paid = http.post(payment, null, {
        headers: Object.assign(headers(token), { 'Idempotency-Key': `pay-${orderId}` }),
        tags: { name: 'pay' },
      });
      serverErrors.add(paid.status >= 500 ? 1 : 0);
      check(paid, { 'paid': (r) => r.status === 200 });
      return;
    }
    sleep(0.1);
  }
  unexpected.add(1);
  console.warn(`order ${orderId}: its payment never fell due`);
}

export function teardown() {
  const sale = saleCounters();
  oversold.add(Math.max(0, sale.reserved + sale.sold - sale.stock));
  console.log(`sale ${sale.id}: stock ${sale.stock}, remaining ${sale.remaining}, reserved ${sale.reserved}, ` +
    `sold ${sale.sold}; queue ${JSON.stringify(sale.queue)}`);
}
