"""Screenshots of the admin UI for the docs: logs in to a running admin (`python -m admin`, `make run`) with
Playwright and the system chromium, and saves full-page PNGs (1366x900 viewport) of each page.

    printf '%s\n' "$PASSWORD" | python -m admin.screenshots --base-url http://127.0.0.1:8000 \
        --username li.na --password-stdin --out docs/screenshots [--loan DEMO-0001]

Saved: 01-login.png, 02-work-queue.png, 03-portfolio.png, 04-loan-<lang>.png (the given loan, else the first
portfolio result), 05-dashboard.png, 06-loan-<other lang>.png (after the header's language button). The
user's language is switched back at the end. Chinese renders with the CJK font the project already ships
(the paperang-p2-fonts-cjk wheel), so no system CJK font is needed. The password is read from standard input
or a prompt, never from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from playwright.async_api import Browser, BrowserType, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
WIDTH, HEIGHT = 1366, 900
TIMEOUT_MS = 20_000
CJK_FONT_PACKAGE = "paperang_p2_fonts_cjk"  # the font the lawyer's letter embeds (activities/legal.py)


class ScreenshotError(Exception):
    """Why the screenshots could not be taken; printed without a traceback."""


@dataclass(frozen=True)
class Options:
    base_url: str
    username: str
    password: str
    out: Path
    loan: str | None
    chromium: str


# -- the browser ---------------------------------------------------------------------------------------------


def fontconfig_file(directory: Path, font_dir: Path | None) -> Path:
    """A fontconfig file: the system's configuration (and font cache) plus the shipped CJK font's folder."""
    extra = f"  <dir>{escape(str(font_dir))}</dir>\n" if font_dir else ""
    path = directory / "fonts.conf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"{extra}</fontconfig>\n",
        encoding="utf-8",
    )
    return path


async def launch(browser_type: BrowserType, chromium: str, env: dict[str, str | float | bool]) -> Browser:
    try:
        return await browser_type.launch(executable_path=chromium, args=CHROMIUM_ARGS, env=env)
    except PlaywrightError as error:
        raise ScreenshotError(f"chromium at {chromium} did not start: {error.message}") from None


# -- the pages -----------------------------------------------------------------------------------------------


async def visit(page: Page, path: str) -> None:
    """Open `path`; an error page or a bounce to the login page is an error, not a screenshot."""
    try:
        response = await page.goto(path)
    except PlaywrightError as error:
        reason = error.message.splitlines()[0] if error.message else "failed"
        raise ScreenshotError(f"GET {path}: {reason} (is the admin UI running at --base-url?)") from None
    if response is None:
        raise ScreenshotError(f"GET {path}: no response")
    if response.status >= 400:
        raise ScreenshotError(f"GET {path} answered {response.status}")
    if urlsplit(page.url).path == "/login" and path != "/login":
        raise ScreenshotError(f"GET {path} sent the browser back to the login page: the session was lost")


async def shoot(page: Page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"saved {path}")
    return path


async def log_in(page: Page, username: str, password: str) -> None:
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("form[action='/login'] button[type=submit]")
    if urlsplit(page.url).path == "/login":
        alert = page.get_by_role("alert")
        reason = (
            (await alert.first.inner_text()).strip() if await alert.count() else "still on the login page"
        )
        raise ScreenshotError(f"login as {username!r} failed: {reason}")


async def first_loan(page: Page) -> str:
    """The first loan the portfolio page links to."""
    links = page.locator("main a[href^='/loans/']")
    if not await links.count():
        raise ScreenshotError("the portfolio shows no loan: start some (make run) or pass --loan LOAN_ID")
    href = await links.first.get_attribute("href")
    assert href is not None
    return href


async def switch_language(page: Page) -> None:
    """Press the header's language button (a form posting to /me/locale)."""
    button = page.locator("header form[action='/me/locale'] button")
    if not await button.count():
        raise ScreenshotError("no language button in the page header")
    async with page.expect_navigation():
        await button.first.click()


async def language(page: Page) -> str:
    return await page.locator("html").get_attribute("lang") or "unknown"


async def take(options: Options) -> list[Path]:
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="overdue-shots-") as scratch:
        with as_file(files(CJK_FONT_PACKAGE).joinpath("fonts")) as font_dir:
            env: dict[str, str | float | bool] = {
                **os.environ,
                "FONTCONFIG_FILE": str(fontconfig_file(Path(scratch), font_dir)),
            }
            async with async_playwright() as playwright:
                browser = await launch(playwright.chromium, options.chromium, env)
                try:
                    context = await browser.new_context(
                        base_url=options.base_url.rstrip("/"),
                        viewport={"width": WIDTH, "height": HEIGHT},
                        locale="en-US",
                    )
                    context.set_default_timeout(TIMEOUT_MS)
                    context.set_default_navigation_timeout(TIMEOUT_MS)
                    page = await context.new_page()
                    saved += await tour(page, options)
                finally:
                    await browser.close()
    return saved


async def tour(page: Page, options: Options) -> list[Path]:
    out = options.out
    saved = []
    await visit(page, "/login")
    saved.append(await shoot(page, out, "01-login"))
    await log_in(page, options.username, options.password)

    await visit(page, "/")
    saved.append(await shoot(page, out, "02-work-queue"))
    await visit(page, "/portfolio")
    saved.append(await shoot(page, out, "03-portfolio"))
    loan_path = f"/loans/{quote(options.loan, safe='')}" if options.loan else await first_loan(page)

    await visit(page, loan_path)
    saved.append(await shoot(page, out, f"04-loan-{await language(page)}"))
    await visit(page, "/dashboard")
    saved.append(await shoot(page, out, "05-dashboard"))

    await visit(page, loan_path)
    await switch_language(page)
    try:
        if urlsplit(page.url).path != loan_path:  # the button came back elsewhere: open the dossier again
            await visit(page, loan_path)
        saved.append(await shoot(page, out, f"06-loan-{await language(page)}"))
    finally:
        await switch_language(page)  # the user's own language again (it is stored with the account)
    return saved


# -- the command ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog="python -m admin.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the running admin UI")
    parser.add_argument("--username", required=True)
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input (else a prompt)"
    )
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    parser.add_argument("--loan", help="the loan whose dossier to show (default: the first portfolio result)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser to drive (default {CHROMIUM})")
    return parser.parse_args(argv), parser


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ScreenshotError("no terminal to prompt for the password: use --password-stdin")
    return getpass.getpass("Password: ")


def main(argv: list[str] | None = None) -> int:
    args, parser = parse_args(argv)
    base = urlsplit(args.base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        parser.error(f"--base-url {args.base_url!r}: give an http(s) URL such as http://127.0.0.1:8000")
    try:
        if not os.path.exists(args.chromium):
            raise ScreenshotError(
                f"no chromium at {args.chromium}: install it (apt-get install chromium) or pass --chromium"
            )
        args.out.mkdir(parents=True, exist_ok=True)
        password = read_password(args.password_stdin)
        if not password:
            raise ScreenshotError("empty password")
        options = Options(args.base_url, args.username, password, args.out, args.loan, args.chromium)
        saved = asyncio.run(take(options))
    except ScreenshotError as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 1
    print(f"{len(saved)} screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
