import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { until } from '@shoal/testkit';
import { startSwarm, stopAll, type TestNode } from './fixtures.js';

// The web view (`--ui-addr`) in headless Chromium, on in-process nodes with fake engines: the page
// draws the swarm, a killed container's card turns red and its slot comes back green. Screenshots
// go to $SHOAL_TEST_LOGS (default /tmp/shoal-test-logs), next to the test logs.

const CHROMIUM = process.env['SHOAL_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = process.env['SHOAL_TEST_LOGS'] ?? '/tmp/shoal-test-logs';

async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}; install Debian's chromium (scripts/setup.sh does) or set SHOAL_CHROMIUM`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    timeout: 30_000,
  });
}

/** Waits until `selector` matches exactly `n` elements (the page updates itself from server-sent events). */
async function count(page: Page, selector: string, n: number): Promise<void> {
  await page.waitForFunction(`document.querySelectorAll(${JSON.stringify(selector)}).length === ${n}`, undefined, { timeout: 30_000 });
}

/** `service.ps` of `ref`: the task in `slot` that is wanted running (the current one). */
async function current(n: TestNode, ref: string, slot: number) {
  const ps = await n.call('service.ps', { ref });
  return ps.tasks.find((t) => t.slot === slot && t.desiredState === 'running');
}

test('web view: three nodes and their tasks; a killed container turns red, its slot comes back green', async (t) => {
  t.timeout(120_000);
  const { nodes } = await startSwarm(1, 2, { options: { uiAddr: '127.0.0.1:0' } });
  t.teardown(() => stopAll(nodes));
  const [n1, n2] = nodes as [TestNode, TestNode, TestNode];
  await n1.call('node.update', { ref: 'node3', labelAdd: { zone: 'b' } });
  // The restart delay keeps the failed task on the picture for a while (the test waits for it).
  await n1.call('service.create', { name: 'web', image: 'shoal/busybox:latest', replicas: 3, restart: { delayMs: 3000 }, ports: [{ targetPort: 80, publishedPort: 8080 }] });
  await n1.call('service.create', { name: 'api', image: 'shoal/busybox:latest', replicas: 2 });
  // One task no node can take: it waits, with the scheduler's reason, in the Unassigned column.
  await n1.call('service.create', { name: 'batch', image: 'shoal/busybox:latest', replicas: 1, constraints: ['node.labels.zone==nowhere'] });

  // Workers do not serve the swarm; they say where to look.
  const workerView = (await (await fetch(new URL('/api/view', n2.node.uiUrl!))).json()) as { error?: string };
  t.regex(workerView.error ?? '', /is a worker.*manager/);

  const browser = await launch();
  t.teardown(() => browser.close());
  const page: Page = await browser.newPage({ viewport: { width: 1360, height: 660 } });
  const origin = new URL(n1.node.uiUrl!).origin;
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(origin)) elsewhere.push(r.url());
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(n1.node.uiUrl!, { waitUntil: 'domcontentloaded' });

  // Three node columns, the manager first, with its leader badge.
  await count(page, '[data-testid=node]', 3);
  const columns = await page.locator('[data-testid=node]').all();
  t.deepEqual(await Promise.all(columns.map((c) => c.getAttribute('data-hostname'))), ['node1', 'node2', 'node3']);
  t.regex((await page.textContent('[data-testid=node][data-hostname=node1]')) ?? '', /Leader/);

  // The service's three tasks run, one per node; the pending one says why.
  await count(page, '[data-testid=task][data-service=web][data-category=running]', 3);
  await page.waitForSelector('[data-testid=service][data-service=web][data-running="3"]', { timeout: 30_000 });
  await page.waitForSelector('[data-testid=unassigned] [data-testid=task][data-service=batch][data-category=pending]', { timeout: 30_000 });
  t.regex((await page.textContent('[data-testid=unassigned] [data-service=batch]')) ?? '', /no suitable node/);
  t.regex((await page.textContent('[data-testid=service][data-service=web]')) ?? '', /3\/3/);

  // Kill web.1's container: its card turns red (FAILED) on the same node ...
  const victim = (await current(n1, 'web', 1))!;
  const owner = nodes.find((n) => n.node.identity?.nodeId === victim.nodeId)!;
  const card = `[data-testid=node][data-node-id="${victim.nodeId}"] [data-task-id="${victim.id}"]`;
  t.is(await page.getAttribute(card, 'data-category'), 'running');
  owner.executor!.exit(victim.id, 137);
  await page.waitForSelector(`${card}[data-category=failed]`, { timeout: 30_000 });
  t.regex((await page.textContent(card)) ?? '', /failed/i);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-view.png') });

  // ... and after the restart delay slot 1 runs again, as a new task.
  await page.waitForSelector(`[data-testid=task][data-service=web][data-slot="1"][data-category=running]:not([data-task-id="${victim.id}"])`, { timeout: 30_000 });
  await until(async () => (await current(n1, 'web', 1))?.status.state === 'running', 'web.1 running again in the store', 10_000);
  await count(page, '[data-testid=task][data-service=web][data-category=running]', 3);
  t.is(await page.$(card), null, 'the failed task left the picture once replaced');
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-view-recovered.png') });

  t.deepEqual(elsewhere, [], 'the page fetched nothing from elsewhere');
  t.deepEqual(errors, [], 'no script errors');
});
