// The front door in a real browser: `/` on a phone and on a desktop reads well (title, one
// h1, the four ways in), passes axe in light and dark colours, does not scroll sideways,
// loads with its CSP and no error; its xAPI link leads to /xapi/about, its documentation link to the README; an
// unknown address shows the HTML 404 page.
import {
  run, openPage, PHONE, DESKTOP, lrs, expect, checkAccessibility,
  assertNoHorizontalScroll, assertNoProblems, screenshot,
} from './lib/browser.mjs';

const LINKS = [
  ['/console', /console/i],
  ['/xapi/about', /xapi/i],
  ['/openapi.json', /api/i],
  ['/docs/README.md', /documentation/i],
];

run('front door on phone and desktop', async (browser) => {
  for (const [label, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const page = await openPage(browser, viewport);
    const res = await page.goto(`${lrs.base}/`);
    expect(res.status() === 200, `GET / answered ${res.status()}`);
    expect(res.headers()['content-type'].startsWith('text/html'), `GET / is ${res.headers()['content-type']}`);

    const title = await page.title();
    expect(/karmayogi-lrs/.test(title) && /Learning Record Store/.test(title), `title is "${title}"`);
    expect(await page.getAttribute('html', 'lang') === 'en', 'html has no lang="en"');
    const h1 = await page.locator('h1').allInnerTexts();
    expect(h1.length === 1 && h1[0].trim() === 'karmayogi-lrs', `h1: ${JSON.stringify(h1)}`);
    expect(await page.locator('main').count() === 1, 'no single <main>');
    const text = await page.locator('main').innerText();
    for (const words of ['Learning Record Store', 'xAPI 1.0.3', 'xAPI 2.0', 'Mission Karmayogi']) {
      expect(text.includes(words), `the page does not say "${words}"`);
    }
    for (const [href, name] of LINKS) {
      const link = page.locator(`main a[href="${href}"]`);
      expect(await link.count() >= 1, `no link to ${href}`);
      const shown = await link.first().innerText();
      expect(name.test(shown), `the link to ${href} reads "${shown}"`);
      expect(await link.first().isVisible(), `the link to ${href} is not visible`);
    }

    // The inline style applied (its hash is in the CSP): an unstyled page would have a
    // full-width <main> and no accent line under the title.
    const styled = await page.evaluate(() => ({
      mainWidth: getComputedStyle(document.querySelector('main')).maxWidth,
      border: getComputedStyle(document.querySelector('h1')).borderBottomStyle,
    }));
    expect(styled.mainWidth !== 'none' && styled.border === 'solid', `the style did not apply: ${JSON.stringify(styled)}`);

    // Tab reaches the first link, and its focus is visible.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const a = document.activeElement;
      return { tag: a.tagName, href: a.getAttribute('href'), outline: getComputedStyle(a).outlineStyle };
    });
    expect(focused.tag === 'A' && focused.outline !== 'none', `after Tab: ${JSON.stringify(focused)}`);
    await page.keyboard.press('Shift+Tab');

    await checkAccessibility(page, { label: `/ (${label})` });
    await assertNoHorizontalScroll(page);
    await screenshot(page, `front-door-${label}`);
    // The dark colours (prefers-color-scheme) must read as well.
    await page.emulateMedia({ colorScheme: 'dark' });
    await checkAccessibility(page, { label: `/ (${label}, dark)` });
    await screenshot(page, `front-door-${label}-dark`);
    await assertNoProblems(page);
    await page.context().close();
  }

  const page = await openPage(browser, PHONE);
  await page.goto(`${lrs.base}/`);

  // The xAPI link: /xapi/about answers without credentials or version header.
  await Promise.all([page.waitForURL(`${lrs.base}/xapi/about`), page.click('main a[href="/xapi/about"]')]);
  const about = JSON.parse(await page.evaluate(() => document.body.innerText));
  expect(Array.isArray(about.version) && about.version.some((v) => v.startsWith('2.0')) && about.version.some((v) => v.startsWith('1.0')),
    `/xapi/about: ${JSON.stringify(about)}`);
  await assertNoProblems(page);

  // The documentation link: the README of this version, as text.
  await page.goto(`${lrs.base}/`);
  await Promise.all([page.waitForURL(`${lrs.base}/docs/README.md`), page.click('main a[href="/docs/README.md"]')]);
  const readme = await page.evaluate(() => document.body.innerText);
  expect(readme.startsWith('# karmayogi-lrs'), `docs/README.md starts with ${JSON.stringify(readme.slice(0, 80))}`);
  await assertNoHorizontalScroll(page);
  await assertNoProblems(page);

  // An address that does not exist: the HTML 404 page, itself accessible, leading home.
  const res = await page.goto(`${lrs.base}/no-such-page`);
  expect(res.status() === 404, `GET /no-such-page answered ${res.status()}`);
  expect((await page.locator('h1').innerText()).trim() === 'Page not found', 'the 404 page has no "Page not found" h1');
  await checkAccessibility(page, { label: '404 page (phone)' });
  await assertNoHorizontalScroll(page);
  await screenshot(page, 'not-found-phone');
  await assertNoProblems(page, { allow: [/HTTP 404: GET .*\/no-such-page$/, /console error: Failed to load resource.*404/] });
  await Promise.all([page.waitForURL(`${lrs.base}/`), page.click('main a[href="/"]')]);
  expect((await page.locator('h1').innerText()).trim() === 'karmayogi-lrs', 'the 404 page does not lead home');
  await assertNoProblems(page);
});
