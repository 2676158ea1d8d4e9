// Helpers for the browser scripts of karmayogi-lrs: start Debian's Chromium through
// playwright-core, open pages at phone and desktop sizes, and check what a person would
// notice (accessibility, sideways scrolling, console errors, CSP violations, failed
// requests). conformance-tests/browser.rs runs each script against a server it started
// and passes the environment read below.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const PHONE = { width: 360, height: 740 };
export const DESKTOP = { width: 1280, height: 800 };

/** The value of environment variable `name`; fails when it is unset. */
export function required(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`environment variable ${name} is not set (conformance-tests/browser.rs sets it; see the README to run a script by hand)`);
  }
  return v;
}

/** The server under test, as conformance-tests/browser.rs describes it. */
export const lrs = {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  get base() { return required('LRS_BASE_URL').replace(/\/+$/, ''); },
  /** `http://127.0.0.1:PORT/xapi/`. */
  get endpoint() { return required('LRS_XAPI_ENDPOINT'); },
  get key() { return required('LRS_KEY'); },
  get secret() { return required('LRS_SECRET'); },
  /** `Basic …` for the credential above. */
  get authorization() {
    return 'Basic ' + Buffer.from(`${this.key}:${this.secret}`).toString('base64');
  },
};

/** Throws `message` (a string or a function making one) unless `condition` holds. */
export function expect(condition, message) {
  if (!condition) {
    throw new Error(typeof message === 'function' ? message() : message);
  }
}

/**
 * Starts headless Chromium (env CHROMIUM, else /usr/bin/chromium). Playwright gives every
 * launch a fresh, empty profile directory of its own (`--user-data-dir` in the temporary
 * folder, removed on close); it refuses one passed in `args`.
 */
export async function launch() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      // This machine's network is closed: without these, Chromium keeps calling home.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What went wrong on each page, collected from the moment it opened. */
const problemsOf = new WeakMap();

/**
 * A new page in a context of its own (no cookies shared with other pages) at `viewport`
 * (PHONE, DESKTOP or `{width, height}`). From then on, console errors, uncaught page
 * errors, requests that failed, responses with an error status and Content-Security-Policy
 * violations are collected for `assertNoProblems`.
 */
export async function openPage(browser, viewport = DESKTOP) {
  const phone = viewport.width < 600;
  const context = await browser.newContext({
    viewport,
    isMobile: phone,
    hasTouch: phone,
    deviceScaleFactor: phone ? 2 : 1,
    locale: 'en-IN',
    timezoneId: 'Asia/Kolkata',
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  problemsOf.set(page, problems);
  // Bindings and init scripts come through the DevTools protocol: the pages' own CSP (no
  // script at all) does not stop them, so a violation is reported even on such a page.
  await page.exposeBinding('__lrsReportViolation', (_source, v) => {
    problems.push(`CSP violation: ${v.directive} blocked ${v.blocked || '(inline)'} on ${v.document}${v.sample ? ` (sample: ${v.sample})` : ''}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__lrsReportViolation({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        document: e.documentURI,
        sample: e.sample,
      });
    });
  });
  page.on('console', (m) => {
    if (m.type() === 'error') {
      const at = m.location();
      problems.push(`console error: ${m.text()}${at && at.url ? ` (${at.url}:${at.lineNumber})` : ''}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText ?? 'unknown'}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) {
      problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
  return page;
}

/**
 * Fails when anything went wrong on `page` since it opened. `allow` lists regular
 * expressions for problems the script expects (e.g. the 404 of a page it opened on
 * purpose); each must match at least one problem, so an expectation cannot go stale.
 */
export async function assertNoProblems(page, { allow = [] } = {}) {
  const problems = problemsOf.get(page);
  expect(problems, 'assertNoProblems: the page was not opened with openPage');
  const unexpected = problems.filter((p) => !allow.some((re) => re.test(p)));
  const unused = allow.filter((re) => !problems.some((p) => re.test(p)));
  const lines = [
    ...unexpected.map((p) => `  - ${p}`),
    ...unused.map((re) => `  - expected a problem matching ${re}, none happened`),
  ];
  // Each problem is reported once, whether this passes or fails.
  problems.length = 0;
  expect(lines.length === 0, () => `problems on ${page.url()}:\n${lines.join('\n')}`);
}

/** Forgets the problems collected so far on `page` (after checking the ones expected). */
export function clearProblems(page) {
  const problems = problemsOf.get(page);
  if (problems) problems.length = 0;
}

const require = createRequire(import.meta.url);
let axeSource;

/**
 * Runs axe-core on the page as it is now and fails on every serious or critical violation,
 * listing each with the elements concerned. Minor and moderate ones are printed only.
 * Returns axe's violations.
 */
export async function checkAccessibility(page, { label = page.url() } = {}) {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, so a page whose CSP forbids scripts can still
  // be checked (a <script> tag would be refused).
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    }));
  });
  const describe = (v) => [
    `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`,
    ...v.nodes.map((n) => `      at ${n.target}\n        ${(n.summary || '').replace(/\n/g, '\n        ')}`),
  ].join('\n');
  const blocking = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const other = results.filter((v) => !blocking.includes(v));
  if (other.length) {
    console.log(`accessibility notes on ${label} (not failing):\n${other.map(describe).join('\n')}`);
  }
  expect(blocking.length === 0, () => `accessibility: ${blocking.length} serious or critical violation(s) on ${label}:\n${blocking.map(describe).join('\n')}`);
  console.log(`accessibility: no serious or critical violation on ${label}`);
  return results;
}

/** Fails when the page is wider than its viewport, naming the elements that stick out. */
export async function assertNoHorizontalScroll(page) {
  const r = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scroll = Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0);
    const wide = [];
    for (const el of document.querySelectorAll('body *')) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 0.5 && wide.length < 5) {
        const id = el.id ? `#${el.id}` : '';
        const cls = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
        wide.push(`${el.tagName.toLowerCase()}${id}${cls} (right edge at ${Math.round(box.right)}px)`);
      }
    }
    return { width, scroll, wide };
  });
  expect(r.scroll <= r.width, () => `horizontal scroll on ${page.url()}: content is ${r.scroll}px wide in a ${r.width}px viewport; sticking out: ${r.wide.join(', ') || '(nothing found)'}`);
}

/** A full-page PNG in BROWSER_ARTIFACTS (`name`.png); returns its path. */
export async function screenshot(page, name) {
  const dir = required('BROWSER_ARTIFACTS');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/**
 * Runs a script's body with a browser, prints `ok: <what>` at the end, and exits non-zero
 * with the error when anything throws. The browser is closed in every case.
 */
export function run(what, body) {
  (async () => {
    let browser;
    try {
      browser = await launch();
      await body(browser);
      console.log(`ok: ${what}`);
    } catch (e) {
      console.error(`FAILED: ${what}\n${e && e.stack ? e.stack : e}`);
      process.exitCode = 1;
    } finally {
      if (browser) await browser.close().catch(() => {});
    }
  })();
}
