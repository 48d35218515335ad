// Compatibility check: the official JavaScript `apify-client`, unmodified, against a running Satchel.
//
//   SATCHEL_URL=http://127.0.0.1:8765 SATCHEL_TOKEN=... node --test tests/js/kvs.test.mjs
//
// SATCHEL_URL is the server's base URL without `/v2` (the client appends it). SATCHEL_ADMIN_USERNAME
// (default `admin`) is the token owner's username, for `username~store-name` addressing.
//
// The main client talks to Satchel through a small recording pass-through proxy started here, so the
// test can see what the client really put on the wire (the client compresses bodies in an axios
// interceptor that runs after any user interceptor) and a failing step can print the exchanges that led
// to it. One test also drives the server directly, with no proxy in between.

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { ApifyClient } from 'apify-client';

const SATCHEL_URL = (process.env.SATCHEL_URL ?? '').replace(/\/+$/, '');
const TOKEN = process.env.SATCHEL_TOKEN ?? '';
const ADMIN = process.env.SATCHEL_ADMIN_USERNAME ?? 'admin';
if (!SATCHEL_URL || !TOKEN) {
    throw new Error('Set SATCHEL_URL (e.g. http://127.0.0.1:8765) and SATCHEL_TOKEN');
}
const TARGET = new URL(SATCHEL_URL);
const RUN = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
const MANY = 1200;

// ---------------------------------------------------------------------------------------------------
// Recording proxy

/** @type {Array<{method: string, url: string, reqHeaders: object, status?: number, resHeaders?: object, body?: string}>} */
const exchanges = [];

function startProxy() {
    const server = http.createServer((req, res) => {
        const entry = { method: req.method, url: req.url, reqHeaders: { ...req.headers } };
        exchanges.push(entry);
        if (exchanges.length > 400) exchanges.splice(0, exchanges.length - 400);
        const upstream = http.request(
            {
                host: TARGET.hostname,
                port: TARGET.port || 80,
                method: req.method,
                path: req.url,
                headers: { ...req.headers, host: TARGET.host },
            },
            (upRes) => {
                entry.status = upRes.statusCode;
                entry.resHeaders = { ...upRes.headers };
                res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders);
                if ((upRes.statusCode ?? 0) >= 400) {
                    const chunks = [];
                    upRes.on('data', (c) => {
                        chunks.push(c);
                        res.write(c);
                    });
                    upRes.on('end', () => {
                        entry.body = Buffer.concat(chunks).toString('utf8').slice(0, 500);
                        res.end();
                    });
                } else {
                    upRes.pipe(res);
                }
            },
        );
        upstream.on('error', (err) => {
            entry.status = 502;
            entry.body = `proxy: ${err.message}`;
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(entry.body);
        });
        req.pipe(upstream);
    });
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => resolve(server));
    });
}

function describeExchange(e) {
    const pick = (h, names) =>
        names
            .filter((n) => h?.[n] !== undefined)
            .map((n) => `${n}: ${h[n]}`)
            .join('; ');
    const req = pick(e.reqHeaders, ['content-type', 'content-encoding', 'content-length', 'accept-encoding']);
    const res = pick(e.resHeaders, ['content-type', 'content-encoding', 'content-length', 'location']);
    return `  ${e.method} ${e.url} [${req}] -> ${e.status ?? '(no answer)'} [${res}]${e.body ? ` ${e.body}` : ''}`;
}

/** Runs a test body; on failure, appends the last HTTP exchanges seen by the proxy to the error. */
function step(name, fn) {
    test(name, async (t) => {
        const start = exchanges.length;
        try {
            await fn(t);
        } catch (err) {
            const seen = exchanges.slice(Math.max(start, exchanges.length - 12));
            const trace = seen.map(describeExchange).join('\n');
            // Reporters print either the message or the stack, so give the trace to the test's
            // diagnostics too.
            t.diagnostic(`last HTTP exchanges of this step:\n${trace || '  (none)'}`);
            if (err && typeof err === 'object' && trace) {
                err.message = `${err.message}\n--- last HTTP exchanges of this step ---\n${trace}`;
            }
            throw err;
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// Helpers

/** A GET straight to Satchel with node:http (no automatic decompression), for checks of the raw wire. */
function rawGet(path, headers = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: TARGET.hostname,
                port: TARGET.port || 80,
                method: 'GET',
                path,
                headers: { authorization: `Bearer ${TOKEN}`, ...headers },
            },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
                res.on('error', reject);
            },
        );
        req.on('error', reject);
        req.end();
    });
}

async function readStream(stream) {
    const chunks = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
}

async function pool(items, concurrency, fn) {
    let next = 0;
    const workers = Array.from({ length: concurrency }, async () => {
        while (next < items.length) {
            const item = items[next++];
            await fn(item);
        }
    });
    await Promise.all(workers);
}

const sleep = (ms) =>
    new Promise((resolve) => {
        setTimeout(resolve, ms);
    });

function byteCompare(a, b) {
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function expectApiError(promise, status, type) {
    await assert.rejects(promise, (err) => {
        assert.equal(err.statusCode, status, `expected HTTP ${status}, got ${err.statusCode}: ${err.message}`);
        if (type) assert.equal(err.type, type, `expected error type ${type}, got ${err.type}: ${err.message}`);
        return true;
    });
}

// ---------------------------------------------------------------------------------------------------

let proxy;
let client; // through the recording proxy
const cleanup = [];

before(async () => {
    proxy = await startProxy();
    const { port } = proxy.address();
    client = new ApifyClient({
        token: TOKEN,
        baseUrl: `http://127.0.0.1:${port}`,
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
            await client.keyValueStore(id).delete();
        } catch {
            // best effort
        }
    }
    proxy?.closeAllConnections?.();
    await new Promise((resolve) => {
        if (proxy) proxy.close(() => resolve());
        else resolve();
    });
});

describe('direct connection', () => {
    step('new ApifyClient({ token, baseUrl }) with no proxy: getOrCreate, setRecord, getRecord, delete', async () => {
        const direct = new ApifyClient({ token: TOKEN, baseUrl: SATCHEL_URL, publicBaseUrl: SATCHEL_URL, maxRetries: 1 });
        const store = await direct.keyValueStores().getOrCreate(`js-direct-${RUN}`);
        const kvs = direct.keyValueStore(store.id);
        await kvs.setRecord({ key: 'hello', value: { foo: 'bar' } });
        const record = await kvs.getRecord('hello');
        assert.deepEqual(record?.value, { foo: 'bar' });
        await kvs.delete();
        assert.equal(await kvs.get(), undefined);
        // A user that is not there is absent too, not an error.
        assert.equal(await direct.user('nobody-here').get(), undefined);
        assert.equal((await direct.user('me').get())?.username, ADMIN);
    });
});

describe('key-value store collection', () => {
    const name = `js-compat-${RUN}`;

    step('getOrCreate(name) twice returns the same store', async () => {
        const first = await client.keyValueStores().getOrCreate(name);
        cleanup.push(first.id);
        assert.equal(typeof first.id, 'string');
        assert.equal(first.name, name);
        assert.ok(first.createdAt instanceof Date, 'createdAt parses as a date');
        assert.ok(first.modifiedAt instanceof Date, 'modifiedAt parses as a date');
        assert.ok(first.accessedAt instanceof Date, 'accessedAt parses as a date');
        const created = exchanges.filter((e) => e.method === 'POST' && e.url.includes(`name=${name}`));
        assert.equal(created.at(-1)?.status, 201, 'a new store answers 201');

        const second = await client.keyValueStores().getOrCreate(name);
        assert.equal(second.id, first.id);
        assert.equal(second.name, name);
        const again = exchanges.filter((e) => e.method === 'POST' && e.url.includes(`name=${name}`));
        assert.equal(again.at(-1)?.status, 200, 'an existing store answers 200');
    });

    step('list({ unnamed, desc, limit, offset }) pages newest first', async () => {
        const ids = [];
        for (let i = 0; i < 3; i++) {
            const store = await client.keyValueStores().getOrCreate();
            assert.equal(store.name ?? null, null, 'getOrCreate() without a name makes an unnamed store');
            ids.push(store.id);
            cleanup.push(store.id);
            await sleep(15);
        }
        const newestFirst = [...ids].reverse();

        const page = await client.keyValueStores().list({ unnamed: true, desc: true, limit: 2, offset: 0 });
        assert.equal(page.limit, 2);
        assert.equal(page.offset, 0);
        assert.equal(page.count, 2);
        assert.equal(page.desc, true);
        assert.ok(page.total >= 3, `total ${page.total} counts every store`);
        assert.deepEqual(
            page.items.map((s) => s.id),
            newestFirst.slice(0, 2),
        );

        const second = await client.keyValueStores().list({ unnamed: true, desc: true, limit: 1, offset: 1 });
        assert.equal(second.offset, 1);
        assert.deepEqual(
            second.items.map((s) => s.id),
            [newestFirst[1]],
        );

        const iterated = [];
        for await (const store of client.keyValueStores().list({ unnamed: true, desc: true, limit: 3 })) {
            iterated.push(store.id);
            assert.ok(iterated.length <= 3, 'the async iterator respects limit');
        }
        assert.deepEqual(iterated, newestFirst);

        const named = await client.keyValueStores().list({ desc: true, limit: 1000 });
        const namedIds = named.items.map((s) => s.id);
        for (const id of ids) assert.ok(!namedIds.includes(id), 'without unnamed, only named stores are listed');
        assert.ok(named.items.every((s) => s.name), 'every listed store has a name');
        assert.ok(
            named.items.some((s) => s.name === name),
            'the named store is listed',
        );
    });
});

describe('a key-value store', () => {
    const name = `js-kvs-${RUN}`;
    const renamed = `js-kvs-renamed-${RUN}`;
    let storeId;
    let kvs;
    const bigObject = {
        items: Array.from({ length: 300 }, (_, i) => ({ i, text: `item number ${i} ` + 'x'.repeat(i % 17) })),
    };
    const bigString = `${'The quick brown fox jumps over the lazy dog. '.repeat(200)}END`;
    const bigBuffer = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7 + (i >> 8)) % 256));

    before(async () => {
        const store = await client.keyValueStores().getOrCreate();
        storeId = store.id;
        cleanup.push(storeId);
        kvs = client.keyValueStore(storeId);
    });

    step('get() returns the store; a missing store gives undefined', async () => {
        const store = await kvs.get();
        assert.equal(store?.id, storeId);
        assert.ok(store.createdAt instanceof Date);
        assert.equal(await client.keyValueStore('NoSuchStore0000000').get(), undefined);
        assert.equal(await client.keyValueStore(`${ADMIN}~no-such-store-${RUN}`).get(), undefined);
    });

    step('update({ name }) renames; admin~name, admin/name and ~name address the store', async () => {
        const updated = await kvs.update({ name });
        assert.equal(updated.id, storeId);
        assert.equal(updated.name, name);
        assert.equal((await kvs.get()).name, name);

        for (const ref of [`${ADMIN}~${name}`, `${ADMIN}/${name}`, `~${name}`]) {
            const byName = await client.keyValueStore(ref).get();
            assert.equal(byName?.id, storeId, `keyValueStore('${ref}').get()`);
        }
        const sent = exchanges.filter((e) => e.url.includes(`/key-value-stores/${ADMIN}~${name}`));
        assert.ok(sent.length >= 2, "the client sends 'admin/name' as 'admin~name'");

        // Records through the name-based address land in the same store.
        await client.keyValueStore(`${ADMIN}~${name}`).setRecord({ key: 'via-name', value: 'hi' });
        assert.equal((await kvs.getRecord('via-name'))?.value, 'hi');
        await kvs.deleteRecord('via-name');

        const taken = await client.keyValueStores().getOrCreate(`js-taken-${RUN}`);
        cleanup.push(taken.id);
        await expectApiError(kvs.update({ name: taken.name }), 409, 'name-not-unique');

        const again = await kvs.update({ name: renamed });
        assert.equal(again.name, renamed);
        assert.equal((await client.keyValueStore(`${ADMIN}/${renamed}`).get())?.id, storeId);
        assert.equal(await client.keyValueStore(`${ADMIN}/${name}`).get(), undefined, 'the old name is free');
    });

    step('setRecord + getRecord of small values: object, string, Buffer, explicit types', async () => {
        await kvs.setRecord({ key: 'obj', value: { hello: 'world', n: 1, nested: [1, 2, { a: null }] } });
        await kvs.setRecord({ key: 'str', value: 'plain text, ünïcödé ✓' });
        await kvs.setRecord({ key: 'buf', value: Buffer.from([0, 1, 2, 3, 254, 255]) });
        await kvs.setRecord({ key: 'page.html', value: '<p>hi</p>', contentType: 'text/html; charset=utf-8' });
        await kvs.setRecord({ key: 'img', value: Buffer.from('89504e470d0a1a0a', 'hex'), contentType: 'image/png' });
        await kvs.setRecord({ key: 'num', value: 42 });
        await kvs.setRecord({ key: "Odd_key-1.(x)!'", value: { odd: true } });

        const obj = await kvs.getRecord('obj');
        assert.equal(obj.key, 'obj');
        assert.deepEqual(obj.value, { hello: 'world', n: 1, nested: [1, 2, { a: null }] });
        assert.match(obj.contentType, /^application\/json/);

        const str = await kvs.getRecord('str');
        assert.equal(str.value, 'plain text, ünïcödé ✓');
        assert.match(str.contentType, /^text\/plain/);

        const buf = await kvs.getRecord('buf');
        assert.ok(Buffer.isBuffer(buf.value), 'octet-stream comes back as a Buffer');
        assert.deepEqual([...buf.value], [0, 1, 2, 3, 254, 255]);
        assert.match(buf.contentType, /^application\/octet-stream/);

        const html = await kvs.getRecord('page.html');
        assert.equal(html.value, '<p>hi</p>');
        assert.match(html.contentType, /^text\/html/);

        const img = await kvs.getRecord('img');
        assert.ok(Buffer.isBuffer(img.value));
        assert.equal(img.value.toString('hex'), '89504e470d0a1a0a');
        assert.equal(img.contentType, 'image/png');

        assert.equal((await kvs.getRecord('num')).value, 42);
        assert.deepEqual((await kvs.getRecord("Odd_key-1.(x)!'")).value, { odd: true });

        const gets = exchanges.filter((e) => e.method === 'GET' && e.url.includes('/records/obj'));
        assert.match(gets.at(-1).url, /[?&]attachment=true/, 'the client asks for attachment=true');
        assert.equal(gets.at(-1).status, 200);
    });

    step('setRecord of values over 1 KiB: the client compresses them and they come back intact', async () => {
        await kvs.setRecord({ key: 'big-obj', value: bigObject });
        await kvs.setRecord({ key: 'big-str', value: bigString });
        await kvs.setRecord({ key: 'big-buf', value: bigBuffer });
        await kvs.setRecord({ key: 'big-csv', value: 'a,b\n'.repeat(600), contentType: 'text/csv' });

        for (const key of ['big-obj', 'big-str', 'big-buf', 'big-csv']) {
            const put = exchanges.filter((e) => e.method === 'PUT' && e.url.includes(`/records/${key}`)).at(-1);
            assert.ok(put, `saw the PUT of ${key}`);
            assert.ok(
                ['br', 'gzip'].includes(put.reqHeaders['content-encoding']),
                `the client compressed ${key} (content-encoding: ${put.reqHeaders['content-encoding']})`,
            );
            assert.ok(put.status >= 200 && put.status < 300, `PUT ${key} answered ${put.status}`);
        }

        const obj = await kvs.getRecord('big-obj');
        assert.deepEqual(obj.value, bigObject);
        assert.match(obj.contentType, /^application\/json/);
        const str = await kvs.getRecord('big-str');
        assert.equal(str.value, bigString);
        const buf = await kvs.getRecord('big-buf');
        assert.ok(Buffer.isBuffer(buf.value));
        assert.ok(buf.value.equals(bigBuffer), 'the large Buffer round-trips byte for byte');
        assert.equal((await kvs.getRecord('big-csv')).value, 'a,b\n'.repeat(600));

        // On the wire: with Accept-Encoding admitting br, the stored brotli bytes come back as sent;
        // with identity only, the server decodes them.
        const path = `/v2/key-value-stores/${storeId}/records/big-str`;
        const encoded = await rawGet(path, { 'accept-encoding': 'gzip, deflate, br' });
        assert.equal(encoded.status, 200);
        const enc = encoded.headers['content-encoding'];
        assert.ok(['br', 'gzip'].includes(enc), `served with content-encoding ${enc}`);
        const decoded = enc === 'br' ? zlib.brotliDecompressSync(encoded.body) : zlib.gunzipSync(encoded.body);
        assert.equal(decoded.toString('utf8'), bigString);
        const plain = await rawGet(path, { 'accept-encoding': 'identity' });
        assert.equal(plain.status, 200);
        assert.equal(plain.headers['content-encoding'] ?? 'identity', 'identity');
        assert.equal(plain.body.toString('utf8'), bigString);
    });

    step('setRecord with a stream value uploads it (chunked, uncompressed)', async () => {
        const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(4096, i));
        await kvs.setRecord({ key: 'streamed', value: Readable.from(chunks), contentType: 'application/x-custom' });
        const put = exchanges.filter((e) => e.method === 'PUT' && e.url.includes('/records/streamed')).at(-1);
        assert.ok(put.status >= 200 && put.status < 300, `PUT answered ${put.status}`);
        const record = await kvs.getRecord('streamed');
        assert.equal(record.contentType, 'application/x-custom');
        assert.ok(Buffer.isBuffer(record.value));
        assert.ok(record.value.equals(Buffer.concat(chunks)), 'the streamed body round-trips');
    });

    const anonymousClient = () =>
        new ApifyClient({ baseUrl: client.baseUrl.replace(/\/v2$/, ''), maxRetries: 0, timeoutSecs: 30 });

    step('getRecord(key, { signature }) reads a restricted store without a token', async () => {
        const store = await kvs.get();
        assert.ok(store.urlSigningSecretKey, 'the owner sees urlSigningSecretKey');
        assert.ok(['RESTRICTED', 'FOLLOW_USER_SETTING'].includes(store.generalAccess ?? 'FOLLOW_USER_SETTING'));
        const anonymous = anonymousClient();
        const recordSignature = new URL(await kvs.getRecordPublicUrl('obj')).searchParams.get('signature');
        const record = await anonymous.keyValueStore(storeId).getRecord('obj', { signature: recordSignature });
        assert.deepEqual(record?.value, { hello: 'world', n: 1, nested: [1, 2, { a: null }] });

        // A wrong signature grants nothing and tells nothing: the answer is a missing store's, which the
        // client reads as "no such record".
        const forged = await anonymous.keyValueStore(storeId).getRecord('obj', { signature: 'x'.repeat(20) });
        const missing = await anonymous.keyValueStore('NoSuchStore123456').getRecord('obj', { signature: 'x'.repeat(20) });
        assert.equal(forged, undefined);
        assert.equal(missing, undefined);
    });

    step('listKeys({ signature }) with the unpadded signature of createKeysPublicUrl works without a token', async () => {
        const anonymous = anonymousClient();
        // The JavaScript client strips the base64 padding of the keys signature.
        const keysUrl = new URL(await kvs.createKeysPublicUrl({ expiresInSecs: 600 }));
        const keysSignature = keysUrl.searchParams.get('signature');
        const keys = await anonymous.keyValueStore(storeId).listKeys({ signature: keysSignature, prefix: 'big-' });
        assert.deepEqual(
            keys.items.map((i) => i.key),
            ['big-buf', 'big-csv', 'big-obj', 'big-str'],
        );
        const neverExpires = new URL(await kvs.createKeysPublicUrl()).searchParams.get('signature');
        const again = await anonymous.keyValueStore(storeId).listKeys({ signature: neverExpires, limit: 1 });
        assert.equal(again.count, 1);
    });

    step('getRecord of a missing key gives undefined; recordExists tells existence', async () => {
        assert.equal(await kvs.getRecord('no-such-key'), undefined);
        assert.equal(await kvs.recordExists('obj'), true);
        assert.equal(await kvs.recordExists('big-buf'), true);
        assert.equal(await kvs.recordExists('no-such-key'), false);
        const head = exchanges.filter((e) => e.method === 'HEAD' && e.url.includes('/records/obj')).at(-1);
        assert.equal(head?.status, 200, 'HEAD of an existing record answers 200');
    });

    step('getRecord with { buffer: true } and { stream: true }', async () => {
        const asBuffer = await kvs.getRecord('obj', { buffer: true });
        assert.ok(Buffer.isBuffer(asBuffer.value), 'buffer: true returns a Buffer');
        assert.deepEqual(JSON.parse(asBuffer.value.toString('utf8')), {
            hello: 'world',
            n: 1,
            nested: [1, 2, { a: null }],
        });
        assert.match(asBuffer.contentType, /^application\/json/);

        const bigAsBuffer = await kvs.getRecord('big-str', { buffer: true });
        assert.equal(bigAsBuffer.value.toString('utf8'), bigString);

        const streamed = await kvs.getRecord('big-buf', { stream: true });
        assert.equal(typeof streamed.value?.pipe, 'function', 'stream: true returns a readable stream');
        assert.ok((await readStream(streamed.value)).equals(bigBuffer));
        assert.match(streamed.contentType, /^application\/octet-stream/);

        const streamedJson = await kvs.getRecord('big-obj', { stream: true });
        assert.deepEqual(JSON.parse((await readStream(streamedJson.value)).toString('utf8')), bigObject);

        // With stream: true the client cannot read the error body of a 404 (it gets a stream, not a
        // buffer), so it cannot see `record-not-found` and throws instead of returning undefined (as
        // against the hosted API). Accept either, but insist on the 404.
        try {
            assert.equal(await kvs.getRecord('no-such-key', { stream: true }), undefined);
        } catch (err) {
            assert.equal(err.statusCode, 404, `a missing record with stream: true: ${err.message}`);
        }
        assert.equal(await kvs.getRecord('no-such-key', { buffer: true }), undefined);
    });

    step('an invalid key is refused with 400 invalid-record-key', async () => {
        await expectApiError(kvs.setRecord({ key: 'k'.repeat(257), value: 'x' }), 400, 'invalid-record-key');
        await expectApiError(kvs.setRecord({ key: 'bad*key', value: 'x' }), 400, 'invalid-record-key');
    });

    step('deleteRecord removes a record; deleting it again is fine', async () => {
        await kvs.setRecord({ key: 'doomed', value: 'bye' });
        assert.equal(await kvs.recordExists('doomed'), true);
        await kvs.deleteRecord('doomed');
        assert.equal(await kvs.recordExists('doomed'), false);
        assert.equal(await kvs.getRecord('doomed'), undefined);
        await kvs.deleteRecord('doomed');
    });

    step('getRecordPublicUrl and createKeysPublicUrl build URLs on the public base URL', async (t) => {
        if (typeof kvs.getRecordPublicUrl !== 'function' || typeof kvs.createKeysPublicUrl !== 'function') {
            t.skip('this apify-client has no public URL helpers');
            return;
        }
        const store = await kvs.get();
        const recordUrl = new URL(await kvs.getRecordPublicUrl('obj'));
        assert.equal(recordUrl.origin, TARGET.origin);
        assert.equal(recordUrl.pathname, `/v2/key-value-stores/${storeId}/records/obj`);
        if (store.urlSigningSecretKey) {
            assert.match(recordUrl.searchParams.get('signature') ?? '', /^[0-9A-Za-z]{10,30}$/);
        }

        const keysUrl = new URL(await kvs.createKeysPublicUrl({ limit: 10, prefix: 'big-', expiresInSecs: 600 }));
        assert.equal(keysUrl.origin, TARGET.origin);
        assert.equal(keysUrl.pathname, `/v2/key-value-stores/${storeId}/keys`);
        assert.equal(keysUrl.searchParams.get('limit'), '10');
        assert.equal(keysUrl.searchParams.get('prefix'), 'big-');
        if (store.urlSigningSecretKey) {
            const signature = keysUrl.searchParams.get('signature') ?? '';
            assert.match(signature, /^[A-Za-z0-9_-]+={0,2}$/);
            const [version, expiresAt, hmac] = Buffer.from(signature, 'base64url').toString('utf8').split('.');
            assert.equal(version, '0');
            assert.ok(Number(expiresAt) > Date.now(), 'the signature expires in the future');
            assert.match(hmac, /^[0-9A-Za-z]{10,30}$/);
        }
    });

    step('delete() removes the store; get() then gives undefined and deleting again is fine', async () => {
        const temp = await client.keyValueStores().getOrCreate(`js-temp-${RUN}`);
        const tempKvs = client.keyValueStore(temp.id);
        await tempKvs.setRecord({ key: 'a', value: 'b' });
        await tempKvs.delete();
        assert.equal(await tempKvs.get(), undefined);
        assert.equal(await tempKvs.getRecord('a'), undefined);
        assert.equal(await tempKvs.recordExists('a'), false);
        await tempKvs.delete();
        assert.equal(await client.keyValueStore(`${ADMIN}~js-temp-${RUN}`).get(), undefined);
    });
});

describe('listKeys over many keys', () => {
    let storeId;
    let kvs;
    const pad = (i) => String(i).padStart(4, '0');
    const manyKeys = Array.from({ length: MANY }, (_, i) => `k-${pad(i)}`);
    const otherKeys = ['A', 'Z', '_under', 'a(b)', "it's", 'x.y!', 'zz-last', 'K-upper', 'k'];
    const allSorted = [...manyKeys, ...otherKeys].sort(byteCompare);

    before(async () => {
        const store = await client.keyValueStores().getOrCreate(`js-many-${RUN}`);
        storeId = store.id;
        cleanup.push(storeId);
        kvs = client.keyValueStore(storeId);
        await pool([...manyKeys, ...otherKeys], 16, (key) => kvs.setRecord({ key, value: { key } }));
    });

    step('a default page holds 1000 keys in UTF-8 binary order, with the listing fields', async () => {
        const page = await kvs.listKeys();
        assert.equal(page.limit, 1000);
        assert.equal(page.count, 1000);
        assert.equal(page.items.length, 1000);
        assert.equal(page.isTruncated, true);
        assert.equal(page.exclusiveStartKey ?? null, null, 'exclusiveStartKey is null on the first page');
        assert.deepEqual(
            page.items.map((i) => i.key),
            allSorted.slice(0, 1000),
        );
        assert.equal(page.nextExclusiveStartKey, allSorted[999]);
        for (const item of page.items) {
            assert.equal(typeof item.size, 'number');
            assert.ok(item.size > 0);
            const url = new URL(item.recordPublicUrl);
            assert.ok(['http:', 'https:'].includes(url.protocol), 'recordPublicUrl is absolute');
            assert.equal(
                decodeURIComponent(url.pathname),
                `/v2/key-value-stores/${storeId}/records/${item.key}`,
                `recordPublicUrl ${item.recordPublicUrl}`,
            );
        }
    });

    step('a limit over 1000 is clamped, not refused', async () => {
        const page = await kvs.listKeys({ limit: 5000 });
        assert.equal(page.count, 1000);
        assert.equal(page.items.length, 1000);
    });

    step('exclusiveStartKey skips every key up to and including it', async () => {
        const page = await kvs.listKeys({ exclusiveStartKey: 'k-0499', limit: 3 });
        assert.deepEqual(
            page.items.map((i) => i.key),
            ['k-0500', 'k-0501', 'k-0502'],
        );
        assert.equal(page.exclusiveStartKey, 'k-0499');
        assert.equal(page.nextExclusiveStartKey, 'k-0502');
        const between = await kvs.listKeys({ exclusiveStartKey: 'k-0499x', limit: 1 });
        assert.deepEqual(
            between.items.map((i) => i.key),
            ['k-0500'],
        );
    });

    step('manual pagination with limit and exclusiveStartKey reaches the end and stops', async () => {
        const seen = [];
        let exclusiveStartKey;
        let pages = 0;
        for (;;) {
            pages++;
            assert.ok(pages <= 20, 'pagination did not terminate');
            const page = await kvs.listKeys({ limit: 250, exclusiveStartKey });
            seen.push(...page.items.map((i) => i.key));
            if (!page.isTruncated) {
                assert.equal(page.nextExclusiveStartKey, null, 'the last page says nextExclusiveStartKey: null');
                break;
            }
            assert.equal(page.count, 250);
            assert.equal(page.nextExclusiveStartKey, page.items.at(-1).key);
            exclusiveStartKey = page.nextExclusiveStartKey;
        }
        assert.equal(pages, Math.ceil(allSorted.length / 250));
        assert.deepEqual(seen, allSorted);
    });

    step('prefix filters, and paginates to the end', async () => {
        const seen = [];
        let exclusiveStartKey;
        let pages = 0;
        for (;;) {
            pages++;
            assert.ok(pages <= 10, 'pagination did not terminate');
            const page = await kvs.listKeys({ prefix: 'k-', limit: 500, exclusiveStartKey });
            assert.ok(page.items.every((i) => i.key.startsWith('k-')));
            seen.push(...page.items.map((i) => i.key));
            if (page.nextExclusiveStartKey === null) {
                assert.equal(page.isTruncated, false);
                break;
            }
            assert.notEqual(page.nextExclusiveStartKey, undefined, 'nextExclusiveStartKey must be present');
            exclusiveStartKey = page.nextExclusiveStartKey;
        }
        assert.equal(pages, 3);
        assert.deepEqual(seen, manyKeys);
        const none = await kvs.listKeys({ prefix: 'nope-' });
        assert.equal(none.count, 0);
        assert.deepEqual(none.items, []);
        assert.equal(none.nextExclusiveStartKey, null);
        assert.equal(none.isTruncated, false);
    });

    step("the client's own async iterator over listKeys terminates", async () => {
        // The client keeps asking while nextExclusiveStartKey !== null: a missing field loops forever.
        const all = [];
        for await (const item of kvs.listKeys()) {
            all.push(item.key);
            assert.ok(all.length <= allSorted.length, 'the iterator went past the last key');
        }
        assert.deepEqual(all, allSorted);

        const limited = [];
        for await (const item of kvs.listKeys({ prefix: 'k-', limit: 1100 })) limited.push(item.key);
        assert.deepEqual(limited, manyKeys.slice(0, 1100));
    });

    step('deleteRecord shows in the listing', async () => {
        await kvs.deleteRecord('k-0000');
        await kvs.deleteRecord('zz-last');
        const page = await kvs.listKeys({ prefix: 'k-0', limit: 2 });
        assert.deepEqual(
            page.items.map((i) => i.key),
            ['k-0001', 'k-0002'],
        );
        const tail = await kvs.listKeys({ exclusiveStartKey: 'x.y!' });
        assert.deepEqual(tail.items, []);
        assert.equal(tail.nextExclusiveStartKey, null);
    });
});
