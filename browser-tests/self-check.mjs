// The helpers of lib/browser.mjs catch what they promise to catch: each is shown a page
// with that fault (served by request interception, under the LRS's own origin) and must
// fail, and a clean page must pass them all. Without this, a helper that checks nothing
// would let every browser test pass.
import {
  run, openPage, PHONE, lrs, expect, checkAccessibility,
  assertNoHorizontalScroll, assertNoProblems,
} from './lib/browser.mjs';

const GOOD = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Clean page</title></head>
<body><main><h1>Clean</h1><p>Nothing wrong here.</p></main></body></html>`;

const PAGES = {
  good: { body: GOOD },
  // The style is refused by the CSP, as a page whose hash went stale would be.
  csp: {
    body: GOOD.replace('</head>', '<style>p{color:#333}</style></head>'),
    headers: { 'Content-Security-Policy': "default-src 'self'; style-src 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='" },
  },
  script: { body: GOOD.replace('</main>', '</main><script>throw new Error("boom from the page")</script>') },
  console: { body: GOOD.replace('</main>', '</main><script>console.error("logged by the page")</script>') },
  missing: { body: GOOD.replace('</main>', '<img src="/__self-check/missing.png" alt="missing"></main>') },
  aborted: { body: GOOD.replace('</main>', '<img src="/__self-check/aborted.png" alt="aborted"></main>') },
  inaccessible: {
    body: `<!doctype html><html><head><title>x</title></head><body>
<p style="color:#eee;background:#fff">faint text</p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<a href="/x"></a></body></html>`,
  },
  wide: { body: GOOD.replace('</main>', '<div class="banner" style="width:900px">wide</div></main>') },
};

async function mustFail(what, fn, pattern) {
  let error;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, `${what}: the helper passed, but it should have failed`);
  expect(pattern.test(error.message), `${what}: failed with an unexpected message:\n${error.message}`);
  console.log(`caught as expected: ${what}`);
}

run('the browser helpers catch what they promise', async (browser) => {
  const page = await openPage(browser, PHONE);
  await page.route(`${lrs.base}/__self-check/**`, (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop();
    if (name === 'aborted.png') return route.abort('connectionrefused');
    const p = PAGES[name];
    if (!p) return route.fulfill({ status: 404, contentType: 'text/plain', body: 'no' });
    return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', headers: p.headers ?? {}, body: p.body });
  });
  const open = (name) => page.goto(`${lrs.base}/__self-check/${name}`, { waitUntil: 'load' });

  await open('good');
  await checkAccessibility(page, { label: 'clean page' });
  await assertNoHorizontalScroll(page);
  await assertNoProblems(page);

  await mustFail('an allowed problem that never happened', () => assertNoProblems(page, { allow: [/never/] }), /expected a problem matching/);

  await open('csp');
  await mustFail('a style refused by the CSP', () => assertNoProblems(page), /CSP violation: style-src/);
  await open('script');
  await mustFail('an uncaught error', () => assertNoProblems(page), /page error: boom from the page/);
  await open('console');
  await mustFail('a console error', () => assertNoProblems(page), /console error: logged by the page/);
  await open('missing');
  await mustFail('a 404 sub-resource', () => assertNoProblems(page), /HTTP 404: GET .*missing\.png/);
  await open('aborted');
  await mustFail('a failed request', () => assertNoProblems(page), /request failed: GET .*aborted\.png/);
  // An expected problem is allowed, and only that one.
  await open('missing');
  await assertNoProblems(page, { allow: [/missing\.png/, /Failed to load resource/] });

  await open('inaccessible');
  await mustFail('an inaccessible page', () => checkAccessibility(page, { label: 'inaccessible page' }), /serious or critical violation.*(image-alt|color-contrast|link-name)/s);
  await open('wide');
  await mustFail('a page wider than the phone', () => assertNoHorizontalScroll(page), /horizontal scroll.*div\.banner/);
  await assertNoProblems(page);
});
