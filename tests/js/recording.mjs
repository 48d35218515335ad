// Shared by datasets.test.mjs and queues.test.mjs: the client under test talks to Satchel through a small
// recording pass-through proxy, so a test can see what the client really put on the wire (the client
// compresses bodies and turns booleans into 1/0 after any user hook could see them) and a failing step
// can print the exchanges that led to it.

import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import http from 'node:http';
import { test } from 'node:test';

const KEEP = 400;

/** The environment every JavaScript check reads; throws when it is missing. */
export function satchelEnv() {
    const url = (process.env.SATCHEL_URL ?? '').replace(/\/+$/, '');
    const token = process.env.SATCHEL_TOKEN ?? '';
    if (!url || !token) throw new Error('Set SATCHEL_URL (e.g. http://127.0.0.1:8765) and SATCHEL_TOKEN');
    return { url, token, admin: process.env.SATCHEL_ADMIN_USERNAME ?? 'admin' };
}

/**
 * A pass-through proxy to `target` that keeps the last exchanges: method, url, request headers, status,
 * response headers, and the first 500 bytes of an error body.
 */
export class RecordingProxy {
    /** @typedef {{method: string, url: string, reqHeaders: object, status?: number, resHeaders?: object}} Seen */
    /** @type {Array<Seen & {body?: string}>} */
    exchanges = [];

    constructor(target) {
        this.target = new URL(target);
        this.server = http.createServer((req, res) => this.#forward(req, res));
    }

    /** Starts listening on a free loopback port; returns the proxy's base URL. */
    async start() {
        await new Promise((resolve) => {
            this.server.listen(0, '127.0.0.1', resolve);
        });
        return `http://127.0.0.1:${this.server.address().port}`;
    }

    async close() {
        this.server.closeAllConnections?.();
        await new Promise((resolve) => {
            this.server.close(() => resolve());
        });
    }

    /** Exchanges whose method is `method` and whose path and query match `pattern`. */
    matching(method, pattern) {
        return this.exchanges.filter((e) => e.method === method && pattern.test(e.url));
    }

    #forward(req, res) {
        const entry = { method: req.method, url: req.url, reqHeaders: { ...req.headers } };
        this.exchanges.push(entry);
        if (this.exchanges.length > KEEP) this.exchanges.splice(0, this.exchanges.length - KEEP);
        const upstream = http.request(
            {
                host: this.target.hostname,
                port: this.target.port || 80,
                method: req.method,
                path: req.url,
                headers: { ...req.headers, host: this.target.host },
            },
            (upRes) => {
                entry.status = upRes.statusCode;
                entry.resHeaders = { ...upRes.headers };
                res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders);
                if ((upRes.statusCode ?? 0) < 400) {
                    upRes.pipe(res);
                    return;
                }
                const chunks = [];
                upRes.on('data', (c) => {
                    chunks.push(c);
                    res.write(c);
                });
                upRes.on('end', () => {
                    entry.body = Buffer.concat(chunks).toString('utf8').slice(0, 500);
                    res.end();
                });
            },
        );
        upstream.on('error', (err) => {
            entry.status = 502;
            entry.body = `proxy: ${err.message}`;
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(entry.body);
        });
        req.pipe(upstream);
    }
}

function describeExchange(e) {
    const pick = (h, names) =>
        names
            .filter((n) => h?.[n] !== undefined)
            .map((n) => `${n}: ${h[n]}`)
            .join('; ');
    const req = pick(e.reqHeaders, ['content-type', 'content-encoding', 'content-length']);
    const res = pick(e.resHeaders, ['content-type', 'content-length', 'location', 'x-apify-pagination-total']);
    return `  ${e.method} ${e.url} [${req}] -> ${e.status ?? '(no answer)'} [${res}]${e.body ? ` ${e.body}` : ''}`;
}

/** `test(name, fn)` that, on failure, appends the step's last HTTP exchanges to the error. */
export function stepThrough(proxy) {
    return (name, fn) =>
        test(name, async (t) => {
            const start = proxy.exchanges.length;
            try {
                await fn(t);
            } catch (err) {
                const seen = proxy.exchanges.slice(Math.max(start, proxy.exchanges.length - 12));
                const trace = seen.map(describeExchange).join('\n') || '  (none)';
                // Reporters print either the message or the stack, so the diagnostics get the trace too.
                t.diagnostic(`last HTTP exchanges of this step:\n${trace}`);
                if (err && typeof err === 'object') {
                    err.message = `${err.message}\n--- last HTTP exchanges of this step ---\n${trace}`;
                }
                throw err;
            }
        });
}

/** Awaits a rejection with this HTTP status and, when given, this error type. */
export async function expectApiError(promise, status, type) {
    await assert.rejects(promise, (err) => {
        assert.equal(err.statusCode, status, `expected HTTP ${status}, got ${err.statusCode}: ${err.message}`);
        if (type) assert.equal(err.type, type, `expected error type ${type}, got ${err.type}: ${err.message}`);
        return true;
    });
}

/** Awaits a rejection with a 4xx status (the server refused; it did not fail). */
export async function expectClientError(promise) {
    await assert.rejects(promise, (err) => {
        assert.ok(
            err.statusCode >= 400 && err.statusCode < 500,
            `expected a 4xx, got ${err.statusCode}: ${err.message}`,
        );
        assert.equal(typeof err.type, 'string', 'the error envelope has a type');
        return true;
    });
}

/** The query of a recorded exchange, as URLSearchParams. */
export function queryOf(exchange) {
    return new URL(exchange.url, 'http://proxy').searchParams;
}

export const runSuffix = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
