import { expect, type Browser, type Page } from "@playwright/test";

const password = process.env.AWOOOI_DEMO_PASSWORD ?? "";

/** A signed-in page in a browser context of its own (its own cookies: its own session).
 *  `before` runs on the new page before anything loads (to watch its requests, say). */
export async function session(
  browser: Browser,
  username: string,
  before?: (page: Page) => void,
): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  before?.(page);
  await page.goto("/login");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  return page;
}

/** Opens `path` and waits until the page is hydrated. */
export async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}
