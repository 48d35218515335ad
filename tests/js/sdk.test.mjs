// Compatibility check: the Apify SDK for JavaScript (`apify`, which carries Crawlee's `@crawlee/core`
// KeyValueStore) against a running Satchel, with the SDK configured only through its usual
// environment variables (APIFY_TOKEN, APIFY_API_BASE_URL, APIFY_API_PUBLIC_BASE_URL).
//
//   SATCHEL_URL=http://127.0.0.1:8765 SATCHEL_TOKEN=... node --test tests/js/sdk.test.mjs
//
// The SDK runs locally (not "at home"), so its default storages stay on disk in a temporary folder and
// Satchel is reached through `Actor.openKeyValueStore(name, { forceCloud: true })` and through
// Crawlee's `KeyValueStore.open(name, { storageClient })` with an ApifyClient.

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const SATCHEL_URL = (process.env.SATCHEL_URL ?? '').replace(/\/+$/, '');
const TOKEN = process.env.SATCHEL_TOKEN ?? '';
if (!SATCHEL_URL || !TOKEN) {
    throw new Error('Set SATCHEL_URL (e.g. http://127.0.0.1:8765) and SATCHEL_TOKEN');
}
const RUN = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'satchel-sdk-'));

// The SDK reads its configuration from the environment when it is loaded.
Object.assign(process.env, {
    APIFY_TOKEN: TOKEN,
    APIFY_API_BASE_URL: SATCHEL_URL,
    APIFY_API_PUBLIC_BASE_URL: SATCHEL_URL,
    APIFY_LOCAL_STORAGE_DIR: storageDir,
    CRAWLEE_STORAGE_DIR: storageDir,
    APIFY_LOG_LEVEL: 'WARNING',
    CRAWLEE_LOG_LEVEL: 'WARNING',
});
delete process.env.APIFY_IS_AT_HOME;

const { Actor, ApifyClient, Configuration, KeyValueStore } = await import('apify');

const client = new ApifyClient({ token: TOKEN, baseUrl: SATCHEL_URL, publicBaseUrl: SATCHEL_URL, maxRetries: 1 });
const cleanup = [];

before(async () => {
    await Actor.init();
});

after(async () => {
    for (const id of cleanup) {
        try {
            await client.keyValueStore(id).delete();
        } catch {
            // best effort
        }
    }
    await Actor.exit({ exit: false });
    fs.rmSync(storageDir, { recursive: true, force: true });
});

describe('Apify SDK: Actor.openKeyValueStore(name, { forceCloud: true })', () => {
    const name = `js-sdk-${RUN}`;
    const bigValue = { rows: Array.from({ length: 200 }, (_, i) => ({ i, label: `row ${i}` })) };
    let store;

    test('opens (creates) the named store on Satchel', async () => {
        store = await Actor.openKeyValueStore(name, { forceCloud: true });
        cleanup.push(store.id);
        assert.equal(store.name, name);
        const same = await client.keyValueStores().getOrCreate(name);
        assert.equal(same.id, store.id, 'the SDK created the store on Satchel');
    });

    test('setValue / getValue round-trip objects, text, binary and large values', async () => {
        await store.setValue('OBJ', { hello: 'sdk', list: [1, 2, 3] });
        await store.setValue('TXT', 'hello from the SDK', { contentType: 'text/plain; charset=utf-8' });
        await store.setValue('BIN', Buffer.from([9, 8, 7, 0, 255]), { contentType: 'application/octet-stream' });
        await store.setValue('BIG', bigValue);

        assert.deepEqual(await store.getValue('OBJ'), { hello: 'sdk', list: [1, 2, 3] });
        assert.equal(await store.getValue('TXT'), 'hello from the SDK');
        const bin = await store.getValue('BIN');
        assert.ok(Buffer.isBuffer(bin));
        assert.deepEqual([...bin], [9, 8, 7, 0, 255]);
        assert.deepEqual(await store.getValue('BIG'), bigValue);

        assert.equal(await store.getValue('MISSING'), null);
        assert.deepEqual(await store.getValue('MISSING', { fallback: true }), { fallback: true });
        assert.equal(await store.recordExists('OBJ'), true);
        assert.equal(await store.recordExists('MISSING'), false);

        // The same records seen through the plain client.
        const record = await client.keyValueStore(store.id).getRecord('BIG');
        assert.deepEqual(record?.value, bigValue);
    });

    test('setValue(key, null) deletes the record', async () => {
        await store.setValue('GONE', 'soon');
        assert.equal(await store.getValue('GONE'), 'soon');
        await store.setValue('GONE', null);
        assert.equal(await store.getValue('GONE'), null);
        assert.equal(await store.recordExists('GONE'), false);
    });

    test('forEachKey walks more than one page of keys and stops', async () => {
        const keys = Array.from({ length: 1010 }, (_, i) => `item-${String(i).padStart(4, '0')}`);
        let next = 0;
        await Promise.all(
            Array.from({ length: 16 }, async () => {
                while (next < keys.length) {
                    const key = keys[next++];
                    await store.setValue(key, { key });
                }
            }),
        );
        const seen = [];
        await store.forEachKey(
            (key, index, info) => {
                assert.equal(index, seen.length);
                assert.equal(typeof info.size, 'number');
                seen.push(key);
                assert.ok(seen.length <= keys.length, 'forEachKey went past the last key');
            },
            { prefix: 'item-' },
        );
        assert.deepEqual(seen, keys);

        const all = [];
        await store.forEachKey((key) => {
            all.push(key);
        });
        assert.deepEqual(all, [...keys, 'BIG', 'BIN', 'OBJ', 'TXT'].sort());
    });

    test('getPublicUrl builds a record URL on APIFY_API_PUBLIC_BASE_URL', async () => {
        const url = new URL(store.getPublicUrl('OBJ'));
        assert.equal(url.origin, new URL(SATCHEL_URL).origin);
        assert.equal(url.pathname, `/v2/key-value-stores/${store.id}/records/OBJ`);
    });

    test("Crawlee's KeyValueStore.open(name) with an ApifyClient finds the existing store", async () => {
        // A fresh Configuration has no cache, so Crawlee asks the server: first
        // GET /v2/key-value-stores/<bare name> (which must answer the store or 404 record-not-found),
        // then POST /v2/key-value-stores?name=<name>.
        const config = new Configuration({ purgeOnStart: false });
        const reopened = await KeyValueStore.open(name, { storageClient: client, config });
        assert.equal(reopened.id, store.id);
        assert.deepEqual(await reopened.getValue('OBJ'), { hello: 'sdk', list: [1, 2, 3] });

        const fresh = `js-crawlee-${RUN}`;
        const created = await KeyValueStore.open(fresh, { storageClient: client, config });
        cleanup.push(created.id);
        assert.equal(created.name, fresh);
        await created.setValue('k', 'v');
        assert.equal((await client.keyValueStore(created.id).getRecord('k'))?.value, 'v');
        await created.drop();
        assert.equal(await client.keyValueStore(created.id).get(), undefined, 'drop() deleted the store');
    });

    test('drop() deletes the store on Satchel', async () => {
        await store.drop();
        assert.equal(await client.keyValueStore(store.id).get(), undefined);
    });
});
