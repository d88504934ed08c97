/** The admin page at /admin on the HTTP port: its files and the reads of its JSON API. */
export { ADMIN_CSP, AdminPage, type AdminAsset, type AdminPageOptions } from './admin-page.ts';
