import { expect, test } from "@playwright/test";
import { session } from "./support";

const password = process.env.AWOOOI_DEMO_PASSWORD ?? "";

test("a cold load of the dashboard gets the bundle compressed, content-named and immutable", async ({
  browser,
}) => {
  // A new context: an empty cache, as on a first visit.
  const assets = new Map<string, { encoding: string; cacheControl: string; vary: string }>();
  const page = await session(browser, "alice", (page) =>
    page.on("response", async (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith("/pkg/")) {
        const headers = await response.allHeaders();
        assets.set(url.pathname, {
          encoding: headers["content-encoding"] ?? "identity",
          cacheControl: headers["cache-control"] ?? "",
          vary: headers["vary"] ?? "",
        });
      }
    }),
  );
  await expect(page.getByTestId("whoami")).toHaveText("alice (DEVOPS)");

  const loaded = [...assets.keys()];
  for (const suffix of [/_bg\.wasm$/, /\.js$/, /\.css$/]) {
    const path = loaded.find((p) => suffix.test(p));
    expect(path, `a ${suffix} file was loaded: ${loaded.join(", ")}`).toBeTruthy();
    // awoooi.<16 hex digits>: a new build has new names, so a year's caching is safe.
    expect(path!).toMatch(/^\/pkg\/awoooi\.[0-9a-f]{16}(_bg\.wasm|\.js|\.css)$/);
    const got = assets.get(path!)!;
    // Chromium asks for br and gzip; the server has brotli copies, and sends one.
    expect(got.encoding, path).toBe("br");
    expect(got.cacheControl, path).toContain("immutable");
    expect(got.cacheControl, path).toContain("max-age=31536000");
    expect(got.vary.toLowerCase(), path).toContain("accept-encoding");
  }

  // The page itself is never cached: it carries the user's data.
  const html = await page.request.get("/");
  expect(html.headers()["cache-control"]).toBe("no-store");

  // A client that takes only gzip gets gzip; one that takes neither gets the file as is.
  const wasm = loaded.find((p) => p.endsWith("_bg.wasm"))!;
  const gzip = await page.request.get(wasm, { headers: { "accept-encoding": "gzip" } });
  expect(gzip.headers()["content-encoding"]).toBe("gzip");
  const plain = await page.request.get(wasm, { headers: { "accept-encoding": "identity" } });
  expect(plain.headers()["content-encoding"] ?? "identity").toBe("identity");
  expect((await plain.body()).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  await page.context().close();
});

test("with JavaScript disabled, sign-in works and the console's pages read", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(password);
  // The plain form posts to /auth/login and the server redirects.
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("whoami")).toHaveText("alice (DEVOPS)");
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");

  // Server-rendered pages: the list, an incident, the topology, FinOps.
  // A service of its own: an alert on a service with an open incident would join that one.
  const stamp = Date.now();
  const title = `disk pressure ${stamp}`;
  const response = await page.request.post("/api/v1/alerts/webhook", {
    data: { name: "DiskPressure", service: `archive-${stamp}`, severity: "warning", annotations: { summary: title } },
  });
  expect(response.status()).toBe(202);
  const row = page.getByTestId("incident-row").filter({ hasText: title });
  // Without JavaScript nothing updates live: reload until the stored incident is listed.
  await expect(async () => {
    await page.goto("/incidents");
    await expect(row).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByRole("heading", { name: "Incidents" })).toBeVisible();
  await row.getByRole("link", { name: title }).click();
  await expect(page).toHaveURL(/\/incidents\/\d+$/);
  await expect(page.getByTestId("incident-title")).toHaveText(title);
  for (const [path, heading] of [
    ["/topology", "Topology"],
    ["/finops", "FinOps"],
  ]) {
    await page.goto(path);
    await expect(page.getByRole("heading", { name: heading })).toBeVisible();
  }
  await context.close();
});
