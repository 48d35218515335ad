// Writes COUNT records to one store with CONCURRENCY requests in flight, through the official client with
// its default retries; exits non-zero on the first error. Run by tests/test_rate_limit.py.
import { ApifyClient } from 'apify-client';

const { SATCHEL_URL, SATCHEL_TOKEN, COUNT = '1200', CONCURRENCY = '32', STORE = 'rl-js' } = process.env;
const client = new ApifyClient({ baseUrl: SATCHEL_URL, token: SATCHEL_TOKEN });
const store = await client.keyValueStores().getOrCreate(STORE);
const kvs = client.keyValueStore(store.id);
const total = Number(COUNT);
let next = 0;
async function worker() {
    while (next < total) {
        const i = next++;
        await kvs.setRecord({ key: `k${String(i).padStart(4, '0')}`, value: { i } });
    }
}
await Promise.all(Array.from({ length: Number(CONCURRENCY) }, worker));
console.log(JSON.stringify({ store: store.id, written: total }));
