raise RuntimeError('config missing at import')
