// Compatibility check: the official JavaScript `apify-client`, unmodified, on request queues against a
// running Satchel.
//
//   SATCHEL_URL=http://127.0.0.1:8765 SATCHEL_TOKEN=... node --test tests/js/queues.test.mjs
//
// What the JavaScript client relies on: booleans arrive as 1/0 (`forefront=1`), every "not found" carries
// the error type `record-not-found` (or `getRequest` throws instead of giving undefined),
// `batchAddRequests` splits into batches of 25 sent in parallel and re-sends every request whose
// `uniqueKey` is not echoed in `processedRequests`, and `listRequests`/`paginateRequests` follow
// `nextCursor` until it is absent. Request ids are derived from the uniqueKey exactly as the SDKs derive
// them, because the SDKs address requests by ids they computed themselves.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe } from 'node:test';

import { ApifyClient } from 'apify-client';

import {
    expectApiError,
    expectClientError,
    queryOf,
    RecordingProxy,
    runSuffix,
    satchelEnv,
    stepThrough,
} from './recording.mjs';

const { url: SATCHEL_URL, token: TOKEN, admin: ADMIN } = satchelEnv();
const RUN = runSuffix();

const proxy = new RecordingProxy(SATCHEL_URL);
const step = stepThrough(proxy);
let client;
const cleanup = [];

before(async () => {
    client = new ApifyClient({
        token: TOKEN,
        baseUrl: await proxy.start(),
        publicBaseUrl: SATCHEL_URL,
        // Fail fast: a retried 5xx shows up as the same error, only later.
        maxRetries: 1,
        minDelayBetweenRetriesMillis: 100,
        timeoutSecs: 30,
    });
});

after(async () => {
    for (const id of cleanup) {
        try {
            await client.requestQueue(id).delete();
        } catch {
            // best effort
        }
    }
    await proxy.close();
});

/** The SDKs' request id: base64(sha256(uniqueKey)) without `+`, `/` and `=`, first 15 characters. */
const requestId = (uniqueKey) =>
    crypto.createHash('sha256').update(uniqueKey, 'utf8').digest('base64').replace(/[+/=]/g, '').slice(0, 15);

const urlOf = (name) => `http://example.com/${name}`;
const req = (name, extra = {}) => ({ url: urlOf(name), uniqueKey: urlOf(name), method: 'GET', ...extra });
const keysOf = (items) => items.map((item) => item.uniqueKey);
const lastCall = (method, pattern) => proxy.matching(method, pattern).at(-1);
const sleep = (ms) =>
    new Promise((resolve) => {
        setTimeout(resolve, ms);
    });

function assertLockExpiry(value, lockSecs, label) {
    assert.ok(value instanceof Date, `${label}: lockExpiresAt parses as a date`);
    const ahead = (value.getTime() - Date.now()) / 1000;
    assert.ok(
        ahead > lockSecs - 30 && ahead <= lockSecs + 5,
        `${label}: lock expires in ${ahead} s, not ~${lockSecs} s`,
    );
}

// ---------------------------------------------------------------------------------------------------

describe('request queue collection and one queue', () => {
    const name = `js-rq-${RUN}`;
    const renamed = `js-rq-renamed-${RUN}`;
    let queueId;

    step('the id derivation matches the SDK vectors', async () => {
        assert.equal(requestId('http://ex.com/1'), 'Sbz3Gqp9BYNtI6D');
        assert.equal(requestId('http://127.0.0.1:47652/index.html'), 'lzowGOVyE2zvDrw');
    });

    step('getOrCreate(name) creates (201) and then finds (200) the same empty queue', async () => {
        const first = await client.requestQueues().getOrCreate(name);
        queueId = first.id;
        cleanup.push(queueId);
        assert.equal(first.name, name);
        assert.equal(first.totalRequestCount, 0);
        assert.equal(first.handledRequestCount, 0);
        assert.equal(first.pendingRequestCount, 0);
        assert.equal(first.hadMultipleClients, false);
        for (const field of ['createdAt', 'modifiedAt', 'accessedAt']) {
            assert.ok(first[field] instanceof Date, `${field} parses as a date`);
        }
        assert.equal(lastCall('POST', new RegExp(`^/v2/request-queues\\?name=${name}$`))?.status, 201);

        const second = await client.requestQueues().getOrCreate(name);
        assert.equal(second.id, queueId);
        assert.equal(lastCall('POST', new RegExp(`^/v2/request-queues\\?name=${name}$`))?.status, 200);
    });

    step('getOrCreate() without a name makes a new unnamed queue each time', async () => {
        const a = await client.requestQueues().getOrCreate();
        await sleep(15); // distinct creation times, for the newest-first order
        const b = await client.requestQueues().getOrCreate();
        cleanup.push(a.id, b.id);
        assert.notEqual(a.id, b.id);
        assert.equal(a.name ?? null, null);
        const listed = await client.requestQueues().list({ unnamed: true, desc: true, limit: 2 });
        assert.deepEqual(
            listed.items.map((q) => q.id),
            [b.id, a.id],
        );
    });

    step('get() by id and by username/name; update({ name }) renames', async () => {
        assert.equal((await client.requestQueue(queueId).get())?.id, queueId);
        assert.equal((await client.requestQueue(`${ADMIN}/${name}`).get())?.id, queueId);
        const updated = await client.requestQueue(queueId).update({ name: renamed });
        assert.equal(updated.name, renamed);
        assert.equal((await client.requestQueue(`${ADMIN}/${renamed}`).get())?.id, queueId);
        assert.equal(await client.requestQueue(`${ADMIN}/${name}`).get(), undefined);
    });

    step('a missing queue: get() and getRequest() give undefined, other calls fail with record-not-found', async () => {
        const missing = client.requestQueue('NoSuchQueue123456', { clientKey: 'client-x' });
        assert.equal(await missing.get(), undefined);
        assert.equal(await missing.getRequest(requestId(urlOf('x'))), undefined);
        await expectApiError(missing.listHead(), 404, 'record-not-found');
        await expectApiError(missing.addRequest(req('x')), 404, 'record-not-found');
        await expectApiError(missing.listAndLockHead({ lockSecs: 10 }), 404, 'record-not-found');
        await expectApiError(missing.listRequests(), 404, 'record-not-found');
    });

    step('delete() removes it; a second delete is swallowed as not found', async () => {
        await client.requestQueue(queueId).delete();
        assert.equal(await client.requestQueue(queueId).get(), undefined);
        await client.requestQueue(queueId).delete();
    });
});

describe('requests in one queue, two clients', () => {
    let queueId;
    let a; // clientKey client-a
    let b; // clientKey client-b
    /** uniqueKey -> handled?, to check the queue's counters against. */
    const known = new Map();
    let lockedA;
    let lockedB;
    const post = () => `POST|60d83e70|015abd7f|${urlOf('form')}`;

    async function assertCounts() {
        const queue = await client.requestQueue(queueId).get();
        const handled = [...known.values()].filter(Boolean).length;
        assert.deepEqual(
            {
                total: queue.totalRequestCount,
                handled: queue.handledRequestCount,
                pending: queue.pendingRequestCount,
            },
            { total: known.size, handled, pending: known.size - handled },
        );
        return queue;
    }

    before(async () => {
        const queue = await client.requestQueues().getOrCreate();
        queueId = queue.id;
        cleanup.push(queueId);
        a = client.requestQueue(queueId, { clientKey: 'client-a' });
        b = client.requestQueue(queueId, { clientKey: 'client-b' });
    });

    step('addRequest answers 201 with the id derived from uniqueKey; a known uniqueKey changes nothing', async () => {
        const first = { ...req('first'), userData: { label: 'A', nested: { deep: [1, 2] } } };
        const added = await a.addRequest(first);
        known.set(first.uniqueKey, false);
        assert.equal(added.requestId, requestId(first.uniqueKey));
        assert.equal(added.wasAlreadyPresent, false);
        assert.equal(added.wasAlreadyHandled, false);
        const call = lastCall('POST', /\/requests\?/);
        assert.equal(call.status, 201);
        assert.equal(queryOf(call).get('clientKey'), 'client-a');

        const again = await a.addRequest({ url: urlOf('elsewhere'), uniqueKey: first.uniqueKey });
        assert.equal(again.requestId, added.requestId);
        assert.equal(again.wasAlreadyPresent, true);
        assert.equal(again.wasAlreadyHandled, false);

        const stored = await a.getRequest(added.requestId);
        assert.equal(stored.id, added.requestId);
        assert.equal(stored.url, first.url, 'a repeated add does not modify the stored request');
        assert.equal(stored.uniqueKey, first.uniqueKey);
        assert.equal(stored.method, 'GET');
        assert.deepEqual(stored.userData, first.userData);
        assert.equal(stored.handledAt ?? null, null);
        await assertCounts();
    });

    step('a request with method, payload and headers round-trips through getRequest', async () => {
        const form = {
            url: urlOf('form'),
            uniqueKey: post(),
            method: 'POST',
            payload: '{"a":1}',
            headers: { 'content-type': 'application/json', 'x-test': 'yes' },
            userData: { __crawlee: { enqueueStrategy: 'same-hostname', crawlDepth: 1 } },
            noRetry: false,
            retryCount: 0,
        };
        const added = await a.addRequest(form);
        known.set(form.uniqueKey, false);
        assert.equal(added.requestId, requestId(form.uniqueKey));
        const stored = await a.getRequest(added.requestId);
        for (const field of ['url', 'uniqueKey', 'method', 'payload', 'headers', 'userData', 'noRetry', 'retryCount']) {
            assert.deepEqual(stored[field], form[field], `${field} round-trips`);
        }
    });

    step('getRequest of an unknown id gives undefined', async () => {
        assert.equal(await a.getRequest(requestId(urlOf('never-added'))), undefined);
        assert.equal(await a.getRequest('NoSuchRequest12'), undefined);
    });

    step('forefront: true (sent as forefront=1) puts requests first, the newest forefront first', async () => {
        await a.addRequest(req('second'));
        await a.addRequest(req('front-1'), { forefront: true });
        assert.equal(queryOf(lastCall('POST', /\/requests\?/)).get('forefront'), '1');
        await a.addRequest(req('front-2'), { forefront: true });
        for (const name of ['second', 'front-1', 'front-2']) known.set(urlOf(name), false);

        const head = await a.listHead({ limit: 10 });
        assert.deepEqual(keysOf(head.items), [
            urlOf('front-2'),
            urlOf('front-1'),
            urlOf('first'),
            post(),
            urlOf('second'),
        ]);
        assert.equal(head.limit, 10);
        assert.ok(head.queueModifiedAt instanceof Date, 'queueModifiedAt parses as a date');
        assert.equal(head.hadMultipleClients, false);
        for (const item of head.items) {
            assert.equal(item.id, requestId(item.uniqueKey));
            assert.equal(typeof item.url, 'string');
        }
        const two = await a.listHead({ limit: 2 });
        assert.deepEqual(keysOf(two.items), [urlOf('front-2'), urlOf('front-1')]);
        await assertCounts();
    });

    step('batchAddRequests: 60 new and one known request in three parallel batches, echoing uniqueKeys', async () => {
        const fresh = Array.from({ length: 60 }, (_, i) => req(`b-${String(i).padStart(2, '0')}`, { userData: { i } }));
        const start = proxy.exchanges.length;
        const result = await a.batchAddRequests([...fresh.slice(0, 10), req('first'), ...fresh.slice(10)]);

        assert.deepEqual(result.unprocessedRequests, []);
        assert.equal(result.processedRequests.length, 61);
        const byKey = new Map(result.processedRequests.map((p) => [p.uniqueKey, p]));
        assert.equal(byKey.size, 61, 'every processed request echoes its own uniqueKey');
        for (const r of fresh) {
            const processed = byKey.get(r.uniqueKey);
            assert.ok(processed, `processed ${r.uniqueKey}`);
            assert.equal(processed.requestId, requestId(r.uniqueKey));
            assert.equal(processed.wasAlreadyPresent, false);
            assert.equal(processed.wasAlreadyHandled, false);
            known.set(r.uniqueKey, false);
        }
        assert.equal(byKey.get(urlOf('first')).wasAlreadyPresent, true);
        assert.equal(byKey.get(urlOf('first')).requestId, requestId(urlOf('first')));

        const batches = proxy.exchanges
            .slice(start)
            .filter((e) => e.method === 'POST' && /\/requests\/batch\?/.test(e.url));
        assert.equal(batches.length, 3, 'no batch was re-sent: the client matched every uniqueKey');
        for (const e of batches) {
            assert.equal(e.status, 201);
            assert.equal(queryOf(e).get('clientKey'), 'client-a');
        }
        assert.ok(
            batches.some((e) => ['br', 'gzip'].includes(e.reqHeaders['content-encoding'])),
            'the client compressed the larger batches',
        );
        const stored = await a.getRequest(requestId(urlOf('b-42')));
        assert.deepEqual(stored.userData, { i: 42 });
        await assertCounts();
    });

    step('updateRequest with handledAt marks it handled: it leaves the head and the counts follow', async () => {
        const id = requestId(urlOf('front-2'));
        const current = await a.getRequest(id);
        const result = await a.updateRequest({ ...current, handledAt: new Date().toISOString() });
        known.set(urlOf('front-2'), true);
        assert.equal(result.requestId, id);
        assert.equal(result.wasAlreadyPresent, true);
        assert.equal(result.wasAlreadyHandled, false);
        assert.equal(lastCall('PUT', new RegExp(`/requests/${id}\\?`)).status, 200);
        const stored = await a.getRequest(id);
        assert.ok(stored.handledAt instanceof Date, 'handledAt reads back as a date');
        assert.equal(keysOf((await a.listHead({ limit: 1 })).items)[0], urlOf('front-1'));
        await assertCounts();
    });

    step('updateRequest without handledAt reclaims it; forefront puts it first; the body is stored', async () => {
        const id = requestId(urlOf('front-2'));
        const { handledAt: _, ...current } = await a.getRequest(id);
        const reclaim = { ...current, retryCount: 1, userData: { retried: true } };
        const result = await a.updateRequest(reclaim, { forefront: true });
        known.set(urlOf('front-2'), false);
        assert.equal(result.wasAlreadyPresent, true);
        assert.equal(result.wasAlreadyHandled, true, 'wasAlreadyHandled is the state before the update');
        assert.equal(queryOf(lastCall('PUT', new RegExp(`/requests/${id}\\?`))).get('forefront'), '1');
        const stored = await a.getRequest(id);
        assert.equal(stored.retryCount, 1);
        assert.deepEqual(stored.userData, { retried: true });
        assert.equal(stored.handledAt ?? null, null);
        assert.equal(keysOf((await a.listHead({ limit: 1 })).items)[0], urlOf('front-2'));
        await assertCounts();

        await a.updateRequest({ ...stored, handledAt: new Date().toISOString() });
        known.set(urlOf('front-2'), true);
        await assertCounts();
    });

    step('updateRequest of an unknown id adds the request (upsert), as the SDKs rely on', async () => {
        const uniqueKey = urlOf('upserted');
        const result = await a.updateRequest({ id: requestId(uniqueKey), uniqueKey, url: uniqueKey, method: 'GET' });
        known.set(uniqueKey, false);
        assert.equal(result.requestId, requestId(uniqueKey));
        assert.equal(result.wasAlreadyPresent, false);
        assert.equal(result.wasAlreadyHandled, false);
        assert.equal((await a.getRequest(requestId(uniqueKey)))?.url, uniqueKey);
        await assertCounts();
    });

    step('hadMultipleClients stays false while one clientKey works on the queue', async () => {
        const queue = await client.requestQueue(queueId).get();
        assert.equal(queue.hadMultipleClients, false);
    });

    step('listAndLockHead locks the first requests for the caller; another client gets the next ones', async () => {
        lockedA = await a.listAndLockHead({ lockSecs: 60, limit: 3 });
        const query = queryOf(lastCall('POST', /\/head\/lock\?/));
        assert.deepEqual(
            [query.get('lockSecs'), query.get('limit'), query.get('clientKey')],
            ['60', '3', 'client-a'],
        );
        assert.deepEqual(keysOf(lockedA.items), [urlOf('front-1'), urlOf('first'), post()]);
        assert.equal(lockedA.lockSecs, 60);
        assert.equal(lockedA.limit, 3);
        assert.equal(lockedA.queueHasLockedRequests, true);
        assert.ok(lockedA.queueModifiedAt instanceof Date);
        for (const item of lockedA.items) {
            assert.equal(item.id, requestId(item.uniqueKey));
            assertLockExpiry(item.lockExpiresAt, 60, item.uniqueKey);
        }

        lockedB = await b.listAndLockHead({ lockSecs: 60, limit: 2 });
        // The three batches ran in parallel, so which of them reached the queue first is open.
        assert.equal(lockedB.items.length, 2);
        assert.equal(lockedB.items[0].uniqueKey, urlOf('second'));
        assert.ok(lockedB.items[1].uniqueKey.startsWith(urlOf('b-')), lockedB.items[1].uniqueKey);
        assert.equal(lockedB.queueHasLockedRequests, true);
        assert.equal(lockedB.hadMultipleClients, true, 'a second clientKey makes hadMultipleClients true');
        assert.equal((await client.requestQueue(queueId).get()).hadMultipleClients, true);

        const lockedIds = [...lockedA.items, ...lockedB.items].map((i) => i.id);
        const head = await a.listHead({ limit: 5 });
        assert.ok(
            head.items.every((i) => !lockedIds.includes(i.id)),
            `locked requests are not at the head: ${keysOf(head.items)}`,
        );
        const locked = await a.listRequests({ filter: ['locked'] });
        assert.deepEqual(locked.items.map((i) => i.id).sort(), [...lockedIds].sort());
    });

    step('prolongRequestLock extends the caller own lock; another client cannot', async () => {
        const [item] = lockedA.items;
        const prolonged = await a.prolongRequestLock(item.id, { lockSecs: 120 });
        assert.equal(queryOf(lastCall('PUT', /\/lock\?/)).get('lockSecs'), '120');
        assertLockExpiry(prolonged.lockExpiresAt, 120, 'prolonged');
        assert.ok(prolonged.lockExpiresAt > item.lockExpiresAt, 'the lock now ends later');
        await expectClientError(b.prolongRequestLock(item.id, { lockSecs: 120 }));
        await expectClientError(a.prolongRequestLock(lockedB.items[0].id, { lockSecs: 120 }));
        const never = requestId(urlOf('never-added'));
        await expectApiError(a.prolongRequestLock(never, { lockSecs: 120 }), 404, 'record-not-found');
        await expectApiError(a.deleteRequestLock(never), 404, 'record-not-found');
    });

    step('deleteRequestLock releases the caller own lock; forefront: true puts it first again', async () => {
        const item = lockedA.items[1]; // first
        await expectClientError(b.deleteRequestLock(item.id));
        await a.deleteRequestLock(item.id, { forefront: true });
        const call = lastCall('DELETE', /\/lock\?/);
        assert.equal(call.status, 204);
        assert.equal(queryOf(call).get('forefront'), '1');
        assert.deepEqual(keysOf((await a.listHead({ limit: 1 })).items), [urlOf('first')]);
        await expectClientError(a.deleteRequestLock(item.id)); // no longer locked
        // The released request can be locked by anyone now.
        const taken = await b.listAndLockHead({ lockSecs: 60, limit: 1 });
        assert.deepEqual(keysOf(taken.items), [urlOf('first')]);
    });

    step('unlockRequests releases every lock of the calling client, and only those', async () => {
        const unlockedB = await b.unlockRequests();
        assert.equal(unlockedB.unlockedCount, 3, 'second, a batch request and first');
        const stillLocked = await a.listRequests({ filter: ['locked'] });
        assert.deepEqual(keysOf(stillLocked.items).sort(), [urlOf('front-1'), post()].sort());
        assert.equal((await a.unlockRequests()).unlockedCount, 2);
        assert.deepEqual((await a.listRequests({ filter: ['locked'] })).items, []);
        assert.equal((await a.unlockRequests()).unlockedCount, 0);
    });

    step('listRequests pages with cursor and nextCursor and reaches every request once', async () => {
        const seen = [];
        let cursor;
        for (let pages = 1; ; pages++) {
            assert.ok(pages <= 20, 'cursor pagination did not terminate');
            const page = await a.listRequests({ limit: 10, cursor });
            assert.equal(page.limit, 10);
            assert.ok(page.items.length <= 10);
            seen.push(...page.items);
            if (!page.nextCursor) break;
            assert.equal(typeof page.nextCursor, 'string');
            cursor = page.nextCursor;
        }
        assert.equal(new Set(seen.map((r) => r.id)).size, seen.length, 'no request is listed twice');
        assert.deepEqual(keysOf(seen).sort(), [...known.keys()].sort());
        for (const r of seen) {
            assert.equal(r.id, requestId(r.uniqueKey));
            assert.equal(r.handledAt instanceof Date, known.get(r.uniqueKey), `handledAt of ${r.uniqueKey}`);
        }

        const pending = [];
        for await (const r of a.listRequests({ filter: ['pending'] })) pending.push(r.uniqueKey);
        const pendingKeys = [...known].filter(([, handled]) => !handled).map(([k]) => k);
        assert.deepEqual(pending.sort(), pendingKeys.sort());

        const first30 = [];
        for await (const r of a.listRequests({ limit: 30 })) first30.push(r.id);
        assert.deepEqual(
            first30,
            seen.slice(0, 30).map((r) => r.id),
            'the async iterator respects limit, in the same stable order',
        );
    });

    step('paginateRequests yields pages of maxPageLimit until nextCursor runs out', async () => {
        const pages = [];
        for await (const page of a.paginateRequests({ maxPageLimit: 10 })) {
            pages.push(page.items.map((r) => r.uniqueKey));
            assert.ok(pages.length <= 20, 'paginateRequests did not terminate');
        }
        assert.ok(pages.every((p) => p.length <= 10));
        assert.deepEqual(pages.flat().sort(), [...known.keys()].sort());

        const limited = [];
        for await (const page of a.paginateRequests({ limit: 25, maxPageLimit: 10 })) limited.push(page.items.length);
        assert.deepEqual(limited, [10, 10, 5]);
    });

    step('batchDeleteRequests by id and by uniqueKey', async () => {
        const result = await b.batchDeleteRequests([{ id: requestId(urlOf('b-58')) }, { uniqueKey: urlOf('b-59') }]);
        assert.equal(result.processedRequests.length, 2);
        assert.deepEqual(result.unprocessedRequests, []);
        known.delete(urlOf('b-58'));
        known.delete(urlOf('b-59'));
        assert.equal(await a.getRequest(requestId(urlOf('b-58'))), undefined);
        assert.equal(await a.getRequest(requestId(urlOf('b-59'))), undefined);
        await assertCounts();
    });

    step('deleteRequest removes a pending and a handled request; a second delete is 404 record-not-found', async () => {
        for (const name of ['upserted', 'front-2']) {
            const id = requestId(urlOf(name));
            await a.deleteRequest(id);
            known.delete(urlOf(name));
            assert.equal(await a.getRequest(id), undefined);
            await expectApiError(a.deleteRequest(id), 404, 'record-not-found');
        }
        await assertCounts();
    });
});

describe('a batch holding a request the server refuses', () => {
    step('batchAddRequests does not throw: each request comes back processed or unprocessed, once', async () => {
        const queue = await client.requestQueues().getOrCreate();
        cleanup.push(queue.id);
        const q = client.requestQueue(queue.id, { clientKey: 'client-e' });
        const batch = [req('good-1'), { uniqueKey: urlOf('no-url'), method: 'GET' }, req('good-2')];
        // Whether the server refuses the whole batch (the client then reports all of it as unprocessed)
        // or only the bad request (the client retries it, then reports it), nothing may go missing. (The
        // client logs "Request batch insert failed" when the whole batch is refused.)
        const result = await q.batchAddRequests(batch, {
            maxUnprocessedRequestsRetries: 1,
            minDelayBetweenUnprocessedRequestsRetriesMillis: 10,
        });
        const processed = result.processedRequests.map((p) => p.uniqueKey);
        const unprocessed = result.unprocessedRequests.map((u) => u.uniqueKey);
        assert.deepEqual([...processed, ...unprocessed].sort(), keysOf(batch).sort());
        assert.ok(unprocessed.includes(urlOf('no-url')), 'the request without a url is unprocessed');
        for (const p of result.processedRequests) assert.equal(p.requestId, requestId(p.uniqueKey));
        const listed = await q.listRequests();
        assert.deepEqual(keysOf(listed.items).sort(), processed.sort(), 'exactly the processed requests are stored');
    });
});

describe('a queue worked to the end', () => {
    let queueId;
    let c;
    let d;

    before(async () => {
        const queue = await client.requestQueues().getOrCreate();
        queueId = queue.id;
        cleanup.push(queueId);
        c = client.requestQueue(queueId, { clientKey: 'client-c' });
        d = client.requestQueue(queueId, { clientKey: 'client-d' });
        await c.batchAddRequests([req('only'), req('reclaimed')]);
    });

    step('a reclaim (update without handledAt) releases the lock, so another client can take the request', async () => {
        const locked = await c.listAndLockHead({ lockSecs: 300, limit: 2 });
        assert.deepEqual(keysOf(locked.items), [urlOf('only'), urlOf('reclaimed')]);
        const again = await d.listAndLockHead({ lockSecs: 300, limit: 25 });
        assert.deepEqual(again.items, [], 'locked requests are not handed out twice');
        assert.equal(again.queueHasLockedRequests, true);

        const reclaimed = await c.getRequest(requestId(urlOf('reclaimed')));
        await c.updateRequest({ ...reclaimed, retryCount: 1 });
        const taken = await d.listAndLockHead({ lockSecs: 300, limit: 25 });
        assert.deepEqual(keysOf(taken.items), [urlOf('reclaimed')]);
    });

    step('once every request is handled, the head is empty and queueHasLockedRequests is false', async () => {
        const only = await c.getRequest(requestId(urlOf('only')));
        await c.updateRequest({ ...only, handledAt: new Date().toISOString() });
        const reclaimed = await d.getRequest(requestId(urlOf('reclaimed')));
        await d.updateRequest({ ...reclaimed, handledAt: new Date().toISOString() });

        const locked = await c.listAndLockHead({ lockSecs: 60, limit: 25 });
        assert.deepEqual(locked.items, []);
        assert.equal(locked.queueHasLockedRequests, false);
        assert.deepEqual((await c.listHead()).items, []);
        const queue = await client.requestQueue(queueId).get();
        assert.deepEqual(
            [queue.totalRequestCount, queue.handledRequestCount, queue.pendingRequestCount],
            [2, 2, 0],
        );
    });
});
