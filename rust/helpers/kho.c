// SPDX-License-Identifier: GPL-2.0

#include <linux/io.h>
#include <linux/mm.h>

/* Only the PCI core's Live Update support and what builds on it use these. */
#ifdef CONFIG_PCI_LIVEUPDATE
__rust_helper phys_addr_t rust_helper_virt_to_phys(void *address)
{
	return virt_to_phys(address);
}

__rust_helper void *rust_helper_phys_to_virt(phys_addr_t address)
{
	return phys_to_virt(address);
}

__rust_helper struct folio *rust_helper_virt_to_folio(const void *x)
{
	return virt_to_folio(x);
}

__rust_helper void *rust_helper_folio_address(const struct folio *folio)
{
	return folio_address(folio);
}

__rust_helper size_t rust_helper_folio_size(const struct folio *folio)
{
	return folio_size(folio);
}

__rust_helper void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}
#endif
